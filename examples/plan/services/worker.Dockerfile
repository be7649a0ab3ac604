# The worker: its FROM goes through an ARG, and it copies the motd out of the base by one of base's tags.
ARG RUNTIME=runtime
FROM busybox:latest AS tools
RUN echo "worker tools" > /tools.txt

FROM ${RUNTIME} AS worker
COPY --from=plan-example/base:1 /etc/motd /opt/app/motd
COPY --from=tools /tools.txt /opt/app/tools.txt
COPY worker.sh /opt/app/worker
ENV APP=worker
USER app
CMD ["/usr/local/bin/run-app"]
