"""Masking of personal data for logs, lists and exports. The rules live with contact extraction in
demand.contacts (the same patterns find and mask); this module is the name the rest of the service uses."""

from demand.contacts import mask_id_card, mask_name, mask_phone, mask_text

__all__ = ["mask_id_card", "mask_name", "mask_phone", "mask_text"]
