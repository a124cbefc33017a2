"""Is this bundle what its manifest says? sha256 of files, reading manifest.json, verifying before loading."""

import hashlib
import json
import os

from .errors import EXIT_BAD_INPUT, EXIT_INTEGRITY, DeviceError

MANIFEST_NAME = "manifest.json"


def sha256_of(path, bufsize=1 << 20):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(bufsize), b""):
            h.update(block)
    return h.hexdigest()


def read_manifest(bundle):
    """(manifest dict, sha256 of manifest.json), after checking the fields the device side relies on."""
    path = os.path.join(bundle, MANIFEST_NAME)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except (IOError, OSError) as exc:
        raise DeviceError("cannot read %s: %s" % (path, exc.strerror or exc), EXIT_BAD_INPUT)
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except ValueError as exc:
        raise DeviceError("%s is not JSON: %s" % (path, exc), EXIT_BAD_INPUT)
    if not isinstance(manifest, dict):
        raise DeviceError("%s: expected a JSON object" % path, EXIT_BAD_INPUT)
    arts = manifest.get("artifacts")
    if not isinstance(arts, list) or not arts or not all(isinstance(a, dict) and "path" in a for a in arts):
        raise DeviceError("%s: field 'artifacts' must be a non-empty list of {path, format, ...}" % path,
                          EXIT_BAD_INPUT)
    if not isinstance(manifest.get("files"), dict):
        raise DeviceError("%s: field 'files' must map paths to {sha256, size_bytes}" % path, EXIT_BAD_INPUT)
    return manifest, hashlib.sha256(raw).hexdigest()


def content_id(files):
    """A bundle's id: first 16 hex of sha256 over the sorted `path NUL sha256 LF` list of its files (manifest.json
    excluded); `files` maps path → sha256 or → {"sha256": ...}. The same id as edge_sdk.bundle.bundle_id, and the
    name of the bundle's release directory on a device."""
    h = hashlib.sha256()
    for rel in sorted(files):
        digest = files[rel].get("sha256", "") if isinstance(files[rel], dict) else files[rel]
        h.update(rel.encode("utf-8") + b"\0" + str(digest).encode("utf-8") + b"\n")
    return h.hexdigest()[:16]


def norm(rel):
    return os.path.normpath(rel).replace(os.sep, "/")


def choose_artifact(manifest, wanted):
    arts = manifest["artifacts"]
    if wanted is None:
        return arts[0]
    for art in arts:
        if norm(art["path"]) == norm(wanted):
            return art
    raise DeviceError("--artifact %s is not one of the bundle's artifacts (%s)"
                      % (wanted, ", ".join(a["path"] for a in arts)), EXIT_BAD_INPUT)


def verify_file(bundle, manifest, rel):
    """Return the absolute path of `rel` after checking its sha256 against the manifest."""
    entry = manifest["files"].get(rel) or manifest["files"].get(norm(rel))
    if not isinstance(entry, dict) or "sha256" not in entry:
        raise DeviceError("%s is not listed with a sha256 in manifest.json; refusing to load it" % rel,
                          EXIT_INTEGRITY)
    path = os.path.join(bundle, rel)
    if not os.path.isfile(path):
        raise DeviceError("%s is listed in manifest.json but missing from the bundle" % rel, EXIT_BAD_INPUT)
    got = sha256_of(path)
    if got != entry["sha256"]:
        raise DeviceError("sha256 of %s is %s but manifest.json says %s; the file was changed or damaged, "
                          "refusing to load it" % (rel, got[:16], entry["sha256"][:16]), EXIT_INTEGRITY)
    return path


def verify_model_files(bundle, manifest, rel):
    """The model file, plus external-data files named after it (model.onnx.data) or beside it (model.bin)."""
    path = verify_file(bundle, manifest, rel)
    prefix = norm(rel) + "."
    for other in sorted(manifest["files"]):
        if norm(other).startswith(prefix):
            verify_file(bundle, manifest, other)
    if norm(rel).endswith(".xml"):  # OpenVINO IR: the weights are the .bin of the same stem, and must be there
        verify_file(bundle, manifest, norm(rel)[:-4] + ".bin")
    return path


def verify_decoder_dir(bundle, manifest, art):
    """A decoder artifact's model directory (weights, genai_config.json, tokenizer): every bundle file in it against
    its sha256; returns the directory's path."""
    folder = norm(art["decoder"]["genai_config"]).rpartition("/")[0]
    for rel in sorted(manifest["files"]):
        if norm(rel).startswith(folder + "/"):
            verify_file(bundle, manifest, rel)
    return os.path.join(bundle, *folder.split("/"))
