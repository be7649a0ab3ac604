FROM busybox
RUN <<EOF
echo this heredoc is never closed
