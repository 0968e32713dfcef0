"""The airflow-platform policy pack: `pulumi preview --policy-pack policies --policy-pack-config policies/config/<stack>.json`.

Every policy is advisory unless a config file says otherwise; policies/config/prod.json makes them all mandatory.
The checks themselves are in airflow_guard/, where the offline plan runs them too.
"""

from pulumi_policy import EnforcementLevel, PolicyPack

from airflow_guard.pack import crossguard_policies

PolicyPack("airflow-platform", policies=crossguard_policies(), enforcement_level=EnforcementLevel.ADVISORY,
           description="Guardrails for the airflow-platform program: AWS, Karpenter, the Airflow release's values, observability.")
