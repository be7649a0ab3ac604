#!/usr/bin/env python3
"""Writes a docker-archive holding two images for measuring `layertool squash --input` on a base of
1,000,000 paths:

  million-base:1  one layer: /m/dNNN/ (1,000 directories) each with 1,000 empty files fNNN, plus /m
                  (1,001,001 paths; a ~512 MB tar of headers)
  million-top:1   the same layer, then one layer that rewrites 1,000 files, deletes 1,000 (whiteouts),
                  and adds /new/ with 1,000 files

usage: gen-million.py OUT.tar [DIRS [FILES_PER_DIR]]   (defaults 1000 1000)
Squash with:  layertool squash million-top:1 --onto million-base:1 --input OUT.tar --output SQUASHED.tar
         or:  ... --input OUT.tar --base-input OUT.tar   (the base read from its own archive)
"""
import hashlib, io, json, os, sys, tarfile, tempfile

out = sys.argv[1]
dirs = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
files = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
MTIME = 1700000000


def entry(name, kind=tarfile.REGTYPE, size=0, mode=0o644):
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mode, info.mtime = kind, size, mode, MTIME
    info.uname = info.gname = "root"
    return info


def write_layer(path, fill):
    """Writes a layer tar with fill(tar) and returns its sha256 digest."""
    with open(path, "wb") as f:
        with tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT) as t:
            fill(t)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def base(t):
    t.addfile(entry("m/", tarfile.DIRTYPE, mode=0o755))
    for d in range(dirs):
        t.addfile(entry(f"m/d{d:04d}/", tarfile.DIRTYPE, mode=0o755))
        for i in range(files):
            t.addfile(entry(f"m/d{d:04d}/f{i:04d}"))


def top(t):
    # Rewrite the first file of each directory, delete the second (a whiteout), add /new with 1,000 files.
    for d in range(dirs):
        t.addfile(entry(f"m/d{d:04d}/", tarfile.DIRTYPE, mode=0o755))
        data = f"changed {d}\n".encode()
        t.addfile(entry(f"m/d{d:04d}/.wh.f0001"))
        t.addfile(entry(f"m/d{d:04d}/f0000", size=len(data)), io.BytesIO(data))
    t.addfile(entry("new/", tarfile.DIRTYPE, mode=0o755))
    for i in range(1000):
        data = f"new {i}\n".encode()
        t.addfile(entry(f"new/n{i:04d}", size=len(data)), io.BytesIO(data))


def config(diff_ids, name):
    return json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": f"{name} layer {i}"} for i in range(len(diff_ids))],
    }).encode()


with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(out))) as tmp:
    base_path, top_path = os.path.join(tmp, "base.tar"), os.path.join(tmp, "top.tar")
    base_id = write_layer(base_path, base)
    top_id = write_layer(top_path, top)
    base_config, top_config = config([base_id], "million-base"), config([base_id, top_id], "million-top")
    names = {p: d.split(":")[1] + "/layer.tar" for p, d in ((base_path, base_id), (top_path, top_id))}
    manifest = json.dumps([
        {"Config": hashlib.sha256(base_config).hexdigest() + ".json", "RepoTags": ["million-base:1"], "Layers": [names[base_path]]},
        {"Config": hashlib.sha256(top_config).hexdigest() + ".json", "RepoTags": ["million-top:1"], "Layers": [names[base_path], names[top_path]]},
    ]).encode()
    with tarfile.open(out, mode="w", format=tarfile.PAX_FORMAT) as t:
        for blob in (base_config, top_config):
            info = entry(hashlib.sha256(blob).hexdigest() + ".json", size=len(blob))
            t.addfile(info, io.BytesIO(blob))
        for path in (base_path, top_path):
            info = entry(names[path], size=os.path.getsize(path))
            with open(path, "rb") as f:
                t.addfile(info, f)
        t.addfile(entry("manifest.json", size=len(manifest)), io.BytesIO(manifest))
print(f"{out}: base of {1 + dirs * (files + 1)} paths ({base_id}), top layer {top_id}")
