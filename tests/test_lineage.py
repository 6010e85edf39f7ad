"""Superset datasets are Dagster assets downstream of the dbt marts they read."""

from __future__ import annotations

from dagster import AssetKey

from dashboards.spec import datasets as D
from pipelines.definitions import JOB_NAME, build_definitions
from pipelines.defs.dashboards import SUPERSET_PREFIX, dataset_asset_specs
from pipelines.defs.transform.dbt import DBT_ASSETS_NAME
from pipelines.lib.settings import load_settings

defs = build_definitions(load_settings())
dbt_models = next(a for a in defs.assets if a.node_def.name == DBT_ASSETS_NAME)


def test_every_dataset_is_an_asset_downstream_of_existing_marts() -> None:
    graph = defs.resolve_asset_graph()
    dbt_keys = set(dbt_models.keys)
    datasets = {AssetKey([SUPERSET_PREFIX, ds.table_name]) for ds in D.ALL}
    assert len(datasets) == len(D.ALL) == len(dataset_asset_specs())
    for key in datasets:
        assert graph.has(key), f"{key.to_user_string()} is not an asset"
        parents = graph.get(key).parent_keys
        assert parents, f"{key.to_user_string()} depends on no mart"
        for parent in parents:
            assert parent in dbt_keys, (
                f"{key.to_user_string()} depends on {parent}, not a dbt model"
            )
            assert parent.path[0] == "marts", parent
    # a virtual dataset joining several marts depends on each of them
    deals = graph.get(AssetKey([SUPERSET_PREFIX, "deals"])).parent_keys
    assert {AssetKey(["marts", "fct_deal"]), AssetKey(["marts", "dim_manager"])} <= deals


def test_the_refresh_job_does_not_try_to_materialize_dataset_assets() -> None:
    job = defs.resolve_job_def(JOB_NAME)
    selected = job.asset_layer.executable_asset_keys
    assert not {k for k in selected if k.path[0] == SUPERSET_PREFIX}
    assert AssetKey(["marts", "fct_deal"]) in selected
