FROM busybox:latest
RUN echo base > /base
