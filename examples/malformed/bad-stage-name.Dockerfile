FROM busybox AS 1st-stage
RUN true
