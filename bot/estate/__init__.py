"""The desired state: read, index, edit (round-trip), compile to Ansible, blast radius."""

from bot.estate.documents import STATE_DIR, Document, read_documents
from bot.estate.edit import apply_changes, path_for
from bot.estate.index import Estate, build_estate, changed_pairs
from bot.estate.inventory import blast_radius, compile_inventory, write_inventory

__all__ = [
    "STATE_DIR",
    "Document",
    "Estate",
    "apply_changes",
    "blast_radius",
    "build_estate",
    "changed_pairs",
    "compile_inventory",
    "path_for",
    "read_documents",
    "write_inventory",
]
