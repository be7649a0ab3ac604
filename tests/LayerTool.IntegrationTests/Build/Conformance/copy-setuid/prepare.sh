# git keeps no setuid, setgid or sticky bits: make them here.
chmod 4755 suid
chmod 2711 sgid
chmod 2744 sgid-noexec
chmod 4644 suid-noexec
chmod 1777 sticky
chmod 7777 all
chmod 0755 plain
chmod 2775 tree/sg
chmod 1777 tree/st
chmod 6755 tree/sg/f
chmod 4700 tree/st/u
