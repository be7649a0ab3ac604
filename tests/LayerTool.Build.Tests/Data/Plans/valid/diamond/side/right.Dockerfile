FROM top:latest
RUN echo right > /right
