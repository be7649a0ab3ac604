FROM busybox
COPY --form=builder /src /dst
