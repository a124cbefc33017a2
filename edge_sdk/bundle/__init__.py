"""Bundles: manifest schema, writer, verifier, safe extraction."""

from .archive import extract_archive, inspect_archive
from .hashing import bundle_id, sha256_file
from ..schemas.bundle import MANIFEST_NAME, Artifact, FileEntry, Manifest, QualityMetric, QualityReport, TensorSig
from .verify import BundleError, check_regular_files, read_manifest, verify_bundle, verify_dir
from .writer import check_bundle_output, pack_archive, write_bundle

__all__ = ["MANIFEST_NAME", "Artifact", "BundleError", "FileEntry", "Manifest", "QualityMetric", "QualityReport",
           "TensorSig", "bundle_id", "check_bundle_output", "check_regular_files", "extract_archive", "inspect_archive",
           "pack_archive", "read_manifest", "sha256_file", "verify_bundle", "verify_dir", "write_bundle"]
