FROM top
RUN echo left > /left
