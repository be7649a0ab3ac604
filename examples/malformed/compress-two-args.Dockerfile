FROM busybox
RUN true
COMPRESS busybox alpine
