# The API service, on the runtime.
FROM runtime
COPY api.sh /opt/app/api
ENV APP=api
USER app
CMD ["/usr/local/bin/run-app"]
