"""The organ of a TCGA image, from the tissue source site code in its name (TCGA-<TSS>-...), for the
sites of the MoNuSeg 2018 images: what a per-organ report groups by.

Codes from the GDC's tissue source site table. Six training images come from lung sites (18, 21, 38,
49, 50: LUSC / LUAD) that the MoNuSeg papers list as liver; the site codes are followed here."""

from __future__ import annotations

ORGAN_OF_SITE = {
    **dict.fromkeys(("18", "21", "38", "44", "49", "50", "69"), "lung"),
    **dict.fromkeys(("A7", "AC", "AO", "AR", "E2"), "breast"),
    **dict.fromkeys(("2Z", "B0", "GL", "HE", "IZ"), "kidney"),
    **dict.fromkeys(("CH", "EJ", "G9", "HC"), "prostate"),
    **dict.fromkeys(("CU", "DK", "G2", "ZF"), "bladder"),
    **dict.fromkeys(("A6", "AY", "NH"), "colon"),
    **dict.fromkeys(("KB", "RD"), "stomach"),
    **dict.fromkeys(("FG", "HT"), "brain"),
}


def organ_of(image_name: str) -> str | None:
    """'TCGA-HT-8564-01Z-00-DX1' -> 'brain'; None for a name that is not a known TCGA site."""
    parts = image_name.split("-")
    return ORGAN_OF_SITE.get(parts[1]) if len(parts) > 2 and parts[0] == "TCGA" else None
