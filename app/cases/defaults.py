"""What a new tenant starts with: the default reason codes (two levels) and policy version 1."""

from __future__ import annotations

from app.cases.models import PolicyVersion, ReasonCode
from app.cases.policy import PolicyRules
from app.extensions import db

# (code, label, requires_photo, fault_party, children)
DEFAULT_REASONS: tuple[tuple[str, str, bool, str, tuple[tuple[str, str, bool, str], ...]], ...] = (
    ("damaged", "Arrived damaged", True, "carrier", (
        ("damaged_in_transit", "Damaged in transit (box damaged)", True, "carrier"),
        ("damaged_on_arrival", "Damaged on arrival (box intact)", True, "merchant"),
    )),
    ("defective", "Defective or not working", True, "vendor", (
        ("defective_dead_on_arrival", "Did not work out of the box", True, "vendor"),
        ("defective_stopped_working", "Stopped working", True, "vendor"),
    )),
    ("wrong_item", "Wrong item received", True, "merchant", (
        ("wrong_item_sent", "A different product was sent", True, "merchant"),
        ("wrong_variant_sent", "Wrong size or colour was sent", True, "merchant"),
    )),
    ("missing_item", "Item or part missing", False, "merchant", (
        ("missing_parts", "Parts or accessories missing", False, "merchant"),
        ("missing_package", "Package never arrived", False, "carrier"),
    )),
    ("not_as_described", "Not as described", True, "merchant", ()),
    ("size_fit", "Size or fit", False, "customer", (
        ("too_small", "Too small", False, "customer"),
        ("too_large", "Too large", False, "customer"),
    )),
    ("changed_mind", "Changed mind", False, "customer", (
        ("no_longer_needed", "No longer needed", False, "customer"),
        ("better_price", "Found a better price", False, "customer"),
        ("ordered_by_mistake", "Ordered by mistake", False, "customer"),
    )),
    ("arrived_late", "Arrived too late", False, "carrier", ()),
    ("warranty", "Warranty claim", True, "vendor", ()),
)


def seed_tenant_defaults(tenant_id: int) -> None:
    """Add the default reason codes and policy to a new tenant, in the caller's transaction."""
    for code, label, photo, fault, children in DEFAULT_REASONS:
        parent = ReasonCode(tenant_id=tenant_id, code=code, label=label, requires_photo=photo, fault_party=fault)
        db.session.add(parent)
        for child_code, child_label, child_photo, child_fault in children:
            db.session.add(
                ReasonCode(
                    tenant_id=tenant_id, code=child_code, label=child_label, requires_photo=child_photo,
                    fault_party=child_fault, parent=parent,
                )
            )
    db.session.add(
        PolicyVersion(
            tenant_id=tenant_id, version=1, document=PolicyRules().model_dump(mode="json"), created_by="system"
        )
    )
