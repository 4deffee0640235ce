"""platform_fib: fiber photometry layout, one row per (asset, fiber, patch cord, channel) (its declaration)."""

from biodata_cache_client.schema.declaration import STRING, Column, TableSpec

PLATFORM_FIB = TableSpec(
    name="platform_fib",
    description="Fiber photometry assets: which patch cord and channel recorded which fiber and structure.",
    type="platform",
    columns=(
        Column("asset_name", STRING, "Asset name."),
        Column("fiber", STRING, "Implanted fiber name, underscores as spaces (Fiber 0)."),
        Column("patch_cord", STRING, "Patch cord connected to the fiber."),
        Column("channel", STRING, "Channel name of the patch cord config."),
        Column("intended_measurement", STRING, "Channel's intended measurement, or 'missing'."),
        Column("targeted_structure", STRING, "Primary targeted structure acronym of the fiber, or 'missing'."),
    ),
)
