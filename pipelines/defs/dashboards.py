"""Superset datasets as Dagster assets downstream of the marts they read (lineage only).

One external asset per dataset of ``dashboards/spec`` (key ``superset/<table_name>``),
depending on the dbt mart assets its table or SQL reads, keyed exactly as
``WarehouseTranslator`` keys dbt models (``marts/<model>``). Dagster never materializes
them: Superset reads the published warehouse itself. They make "which dashboards does a
change to this mart touch?" answerable in the Dagster UI.
"""

from dagster import AssetKey, AssetSpec

from dashboards.spec import dashboards as dashboard_spec
from dashboards.spec import datasets as dataset_spec
from dashboards.spec.model import Dataset
from pipelines.lib.superset import MART_SCHEMA, dataset_tables

SUPERSET_PREFIX = "superset"


def mart_key(table: str) -> AssetKey:
    """The asset key of a mart model, as the dbt translator names it."""
    return AssetKey([MART_SCHEMA, table])


def _dashboards_of(dataset: Dataset) -> list[str]:
    return sorted(
        d.title for d in dashboard_spec.DASHBOARDS if any(c.dataset is dataset for c in d.charts)
    )


def dataset_asset_specs() -> list[AssetSpec]:
    """One AssetSpec per Superset dataset, with deps on the marts it reads."""
    specs = []
    for ds in dataset_spec.ALL:
        doc = {"sql": ds.sql, "table_name": ds.table_name}
        marts = sorted(set(dataset_tables(doc)))
        used_by = _dashboards_of(ds)
        specs.append(
            AssetSpec(
                key=AssetKey([SUPERSET_PREFIX, ds.table_name]),
                deps=[mart_key(t) for t in marts],
                description=ds.description,
                group_name="dashboards",
                kinds={"superset"},
                metadata={
                    "dataset_uuid": ds.id,
                    "virtual": ds.sql is not None,
                    "dashboards": ", ".join(used_by) or "(none)",
                },
            )
        )
    return specs
