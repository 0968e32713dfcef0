"""Names several components must agree on: bucket prefixes, the node-pool label, Airflow's namespace and accounts.

Kept free of Pulumi so the pure builders (chart values, the Celery module) can use them too.
"""

# The DAG bucket: each team publishes under teams/<team>/; the platform publishes modules every DAG may import
# (the company notifier) under shared/; Airflow writes task logs under logs/. dagtool holds the same names.
TEAMS_PREFIX = "teams"
SHARED_PREFIX = "shared"
LOGS_PREFIX = "logs"
# What `dagtool publish` keeps beside a team's DAGs (not for Airflow to see).
PUBLISH_MANIFEST = ".dagtool-manifest.json"

# The node label that says which pool a node belongs to: the system managed node group, or Karpenter's workers and tasks.
POOL_LABEL = "airflow-platform/pool"
# Karpenter drains a node it removes only once such pods are done, or its NodePool's terminationGracePeriod runs out.
DO_NOT_DISRUPT = "karpenter.sh/do-not-disrupt"
# The smallest Karpenter node, in vCPUs: on smaller ones the DaemonSets and the kubelet's reservations take a large share
# (the NodePools require it; the capacity contract assumes it).
MINIMUM_NODE_CPUS = 4

AIRFLOW_NAMESPACE = "airflow"
AIRFLOW_RELEASE = "airflow"
# The chart names each component's service account <release>-<component>.
SERVICE_ACCOUNTS = {"scheduler": "airflow-scheduler", "dagProcessor": "airflow-dag-processor", "triggerer": "airflow-triggerer",
                    "workers": "airflow-worker", "apiServer": "airflow-api-server"}
# The components that load DAG files: the DAG processor parses them, workers run their tasks, the triggerer imports their
# triggers. Airflow 3's scheduler reads serialized DAGs from the database (DBDagBag) and runs no DAG code, so the chart
# mounts no DAG folder into it beside a standalone DAG processor, and neither does the platform.
DAG_READERS = ("dagProcessor", "triggerer", "workers")
# On a namespace, the AWS Load Balancer Controller's webhook gives pods behind a TargetGroupBinding a readiness gate: a
# rolling update waits until each new pod is healthy in its target group before the next old one goes.
READINESS_GATE_LABELS = {"elbv2.k8s.aws/pod-readiness-gate-inject": "enabled"}
