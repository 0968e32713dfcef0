"""Tests the Broker component: an ElastiCache replication group that survives a zone loss, or none in dev."""

from __future__ import annotations

from components.broker import node_zones

GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"


def test_dev_uses_the_in_cluster_broker(dev_plan):
    """Dev defaults to the chart's in-cluster Redis: no ElastiCache resource at all."""
    assert [r for r in dev_plan.resources if r.type.startswith("aws:elasticache")] == []
    assert dev_plan.outputs["brokerAddress"] == "in-cluster"


def test_prod_group_survives_a_zone_loss(prod_plan):
    """Prod: three nodes in three zones, automatic failover, Multi-AZ."""
    [group] = prod_plan.of_type(GROUP)
    assert (group.inputs["numCacheClusters"], group.inputs["automaticFailoverEnabled"], group.inputs["multiAzEnabled"]) == (3, True, True)
    assert group.inputs["preferredCacheClusterAzs"] == ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
    assert (group.inputs["engine"], group.inputs["engineVersion"], group.inputs["nodeType"]) == ("valkey", "8.0", "cache.m7g.large")


def test_prod_group_encrypted_and_authenticated(prod_plan):
    """TLS in transit, encryption at rest with the component's key, and a generated auth token kept secret."""
    [group] = prod_plan.of_type(GROUP)
    key = prod_plan.named("airflow-prod-broker-key")
    assert (group.inputs["transitEncryptionEnabled"], group.inputs["atRestEncryptionEnabled"], group.inputs["kmsKeyId"]) == (True, True, key.outputs["arn"])
    assert "authToken" in group.secret_inputs
    assert prod_plan.named("airflow-prod-broker-auth-token").inputs["length"] == 64


def test_only_the_cluster_reaches_the_broker(prod_plan):
    """The broker's security group admits port 6379 from the cluster's security group only."""
    [cluster] = prod_plan.of_type("aws:eks/cluster:Cluster")
    group = prod_plan.named("airflow-prod-broker-sg")
    [rule] = [r for r in prod_plan.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule") if r.inputs["securityGroupId"] == group.id]
    assert (rule.inputs["fromPort"], rule.inputs["referencedSecurityGroupId"]) == (6379, cluster.outputs["vpcConfig"]["clusterSecurityGroupId"])
    assert prod_plan.named("airflow-prod-broker-subnets").inputs["subnetIds"] == prod_plan.outputs["privateSubnetIds"]


def test_node_zones_round_robin():
    """Nodes are spread round-robin, so a primary and its first replica never share a zone."""
    assert node_zones(["a", "b", "c"], 2) == ["a", "b"]
    assert node_zones(["a", "b"], 5) == ["a", "b", "a", "b", "a"]
