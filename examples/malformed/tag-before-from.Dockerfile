TAG app:early
FROM busybox
