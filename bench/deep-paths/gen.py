#!/usr/bin/env python3
"""Writes a docker-archive whose only layer holds one file at a path of N segments of 16 bytes
(a PAX path header), for measuring `layertool layers/diff/squash --input` on deep paths.

usage: gen.py SEGMENTS OUT.tar [TAG]   (TAG defaults to deep:SEGMENTS)
"""
import hashlib, io, json, sys, tarfile

segments, out = int(sys.argv[1]), sys.argv[2]
tag = sys.argv[3] if len(sys.argv) > 3 else f"deep:{segments}"

layer = io.BytesIO()
with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as t:
    path = "/".join(f"d{i:014d}" for i in range(segments - 1)) + "/file"
    data = b"deep\n"
    info = tarfile.TarInfo(path)
    info.size, info.mode, info.mtime = len(data), 0o644, 1700000000
    t.addfile(info, io.BytesIO(data))
layer_bytes = layer.getvalue()
diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()
config = json.dumps({
    "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
    "config": {"Cmd": ["/file"]},
    "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    "history": [{"created": "2024-01-01T00:00:00Z", "created_by": f"deep path of {segments} segments"}],
}).encode()
config_name = hashlib.sha256(config).hexdigest() + ".json"
manifest = json.dumps([{"Config": config_name, "RepoTags": [tag], "Layers": ["layer/layer.tar"]}]).encode()

with tarfile.open(out, mode="w", format=tarfile.PAX_FORMAT) as t:
    for name, blob in ((config_name, config), ("layer/layer.tar", layer_bytes), ("manifest.json", manifest)):
        info = tarfile.TarInfo(name)
        info.size, info.mtime = len(blob), 1700000000
        t.addfile(info, io.BytesIO(blob))
print(f"{out}: {segments} segments, path {len(path)} bytes, layer {len(layer_bytes)} bytes")
