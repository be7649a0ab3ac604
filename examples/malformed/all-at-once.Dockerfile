TAG app:early
FROM busybox AS 1st-stage
COPY --form=builder /src /dst
ENV
COMPRESS busybox alpine
RUN <<EOF
echo never closed
