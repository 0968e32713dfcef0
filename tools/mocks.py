"""Pulumi mocks that stand in for AWS during the offline plan and the tests.

Resources get the computed attributes AWS would give them (ids, ARNs, endpoints, the cluster's OIDC
issuer) in AWS's own formats, so code that builds on them (IAM documents, the kubeconfig) sees realistic
values. Invokes the program makes are answered here; an invoke without an answer fails loudly instead of
returning an empty result that would hide a mistake.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any, Callable

import pulumi

ACCOUNT_ID = "123456789012"
PARTITION = "aws"


def _hex(seed: str, length: int) -> str:
    return hashlib.sha1(seed.encode()).hexdigest()[:length]


def _one_or_many(values: list[str]) -> str | list[str]:
    # Like the provider: a single value is written as a string, several as a list.
    return values[0] if len(values) == 1 else list(values)


def render_policy_document(args: dict[str, Any]) -> str:
    """Render aws.iam.getPolicyDocument's arguments as the provider does: IAM JSON with IAM's element names."""
    statements = []
    for statement in args.get("statements", []):
        out: dict[str, Any] = {}
        if statement.get("sid"):
            out["Sid"] = statement["sid"]
        out["Effect"] = statement.get("effect") or "Allow"
        for source, element in (("actions", "Action"), ("notActions", "NotAction"),
                                ("resources", "Resource"), ("notResources", "NotResource")):
            if statement.get(source):
                out[element] = _one_or_many(statement[source])
        for source, element in (("principals", "Principal"), ("notPrincipals", "NotPrincipal")):
            if statement.get(source):
                grouped: dict[str, list[str]] = {}
                for principal in statement[source]:
                    grouped.setdefault(principal["type"], []).extend(principal["identifiers"])
                out[element] = "*" if grouped == {"*": ["*"]} else {k: _one_or_many(v) for k, v in grouped.items()}
        if statement.get("conditions"):
            conditions: dict[str, dict[str, Any]] = {}
            for condition in statement["conditions"]:
                conditions.setdefault(condition["test"], {})[condition["variable"]] = _one_or_many(condition["values"])
            out["Condition"] = conditions
        statements.append(out)
    document: dict[str, Any] = {"Version": args.get("version") or "2012-10-17"}
    if args.get("policyId"):
        document["Id"] = args["policyId"]
    document["Statement"] = statements
    return json.dumps(document, indent=2)


# EC2-style ids: the prefix AWS uses for each resource type.
_ID_PREFIX = {
    "aws:ec2/vpc:Vpc": "vpc",
    "aws:ec2/subnet:Subnet": "subnet",
    "aws:ec2/internetGateway:InternetGateway": "igw",
    "aws:ec2/eip:Eip": "eipalloc",
    "aws:ec2/natGateway:NatGateway": "nat",
    "aws:ec2/routeTable:RouteTable": "rtb",
    "aws:ec2/securityGroup:SecurityGroup": "sg",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "sg",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "vpce",
    "aws:ec2/launchTemplate:LaunchTemplate": "lt",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "sgr",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "sgr",
}

# The hosted zone of Application Load Balancers' DNS names per region (what an alias record targets); a region not
# listed gets an invented id of the same form.
_ALB_ZONES = {"eu-west-1": "Z32O12XQLNTSW2", "eu-central-1": "Z215JYRZR1TBD5", "us-east-1": "Z35SXDOTRQ7X7K",
              "us-west-2": "Z1H1FL5HABSF5"}


class PlatformMocks(pulumi.runtime.Mocks):
    """Answers resource registrations and invokes for one region."""

    def __init__(self, region: str, subnet_zones: dict[str, str] | None = None):
        self.region = region
        # Existing subnets get zones in the order they are looked up, unless a test pins them.
        self._subnet_zones = dict(subnet_zones or {})
        self.zone_names = [f"{region}{letter}" for letter in "abcdef"]

    # --- resources -------------------------------------------------------------------------------

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        inputs = dict(args.inputs)
        extra = self._computed(args.typ, args.name, inputs)
        resource_id = extra.pop("id", None) or args.resource_id or f"{args.name}-id"
        return resource_id, {**inputs, **extra}

    def _physical_name(self, logical: str, inputs: dict, key: str = "name") -> str:
        return inputs.get(key) or f"{logical}-{_hex(logical, 7)}"

    def _arn(self, service: str, resource: str, regional: bool = True) -> str:
        region = self.region if regional else ""
        return f"arn:{PARTITION}:{service}:{region}:{ACCOUNT_ID}:{resource}"

    def _computed(self, typ: str, logical: str, inputs: dict) -> dict:
        if typ in _ID_PREFIX:
            return {"id": f"{_ID_PREFIX[typ]}-{_hex(logical, 17)}"}
        builder = self._builders().get(typ)
        if builder is not None:
            return builder(logical, inputs)
        if typ.startswith("aws:"):
            service = typ.split(":")[1].split("/")[0]
            name = self._physical_name(logical, inputs)
            return {"arn": self._arn(service, f"{typ.split(':')[-1].lower()}/{name}"), "name": name}
        return {}

    def _builders(self) -> dict[str, Callable[[str, dict], dict]]:
        return {
            "aws:s3/bucket:Bucket": self._bucket,
            "aws:iam/role:Role": self._role,
            "aws:iam/openIdConnectProvider:OpenIdConnectProvider": self._oidc_provider,
            "aws:kms/key:Key": self._kms_key,
            "aws:eks/cluster:Cluster": self._eks_cluster,
            "aws:rds/instance:Instance": self._db_instance,
            "aws:elasticache/replicationGroup:ReplicationGroup": self._replication_group,
            "aws:sns/topic:Topic": self._topic,
            "aws:cloudwatch/logGroup:LogGroup": self._log_group,
            "aws:ec2/launchTemplate:LaunchTemplate": self._launch_template,
            "random:index/randomPassword:RandomPassword": self._random_password,
            "random:index/randomId:RandomId": self._random_id,
            "aws:secretsmanager/secret:Secret": self._secret,
            "aws:sqs/queue:Queue": self._queue,
            "aws:cloudwatch/eventRule:EventRule": self._event_rule,
            "aws:lb/loadBalancer:LoadBalancer": self._load_balancer,
            "aws:lb/targetGroup:TargetGroup": self._target_group,
            "aws:lb/listener:Listener": self._listener,
            "aws:lb/listenerRule:ListenerRule": self._listener_rule,
            "aws:acm/certificate:Certificate": self._certificate,
            "aws:acm/certificateValidation:CertificateValidation": self._certificate_validation,
            "aws:route53/record:Record": self._record,
            "aws:ec2/flowLog:FlowLog": self._flow_log,
            "aws:cloudtrail/trail:Trail": self._trail,
        }

    # Elastic Load Balancing: the ARN is the id; a listener's and a rule's ARNs extend their load balancer's.
    def _load_balancer(self, logical: str, inputs: dict) -> dict:
        name = self._physical_name(logical, inputs)
        arn = self._arn("elasticloadbalancing", f"loadbalancer/app/{name}/{_hex(logical, 16)}")
        scheme = "internal-" if inputs.get("internal") else ""
        return {"id": arn, "arn": arn, "arnSuffix": arn.split(":loadbalancer/")[1], "name": name,
                "dnsName": f"{scheme}{name}-{int(_hex(logical, 8), 16) % 10**10:010d}.{self.region}.elb.amazonaws.com",
                "zoneId": _ALB_ZONES.get(self.region, f"Z{_hex(self.region, 13).upper()}")}

    def _target_group(self, logical: str, inputs: dict) -> dict:
        name = self._physical_name(logical, inputs)
        arn = self._arn("elasticloadbalancing", f"targetgroup/{name}/{_hex(logical, 16)}")
        return {"id": arn, "arn": arn, "arnSuffix": arn.split(":")[-1], "name": name}

    def _listener(self, logical: str, inputs: dict) -> dict:
        load_balancer = inputs["loadBalancerArn"].split(":loadbalancer/")[1]
        arn = self._arn("elasticloadbalancing", f"listener/{load_balancer}/{_hex(logical, 16)}")
        return {"id": arn, "arn": arn}

    def _listener_rule(self, logical: str, inputs: dict) -> dict:
        listener = inputs["listenerArn"].split(":listener/")[1]
        arn = self._arn("elasticloadbalancing", f"listener-rule/{listener}/{_hex(logical, 16)}")
        return {"id": arn, "arn": arn}

    def _certificate(self, logical: str, inputs: dict) -> dict:
        digest = _hex(logical, 32)
        arn = self._arn("acm", f"certificate/{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}")
        names = [inputs["domainName"], *(inputs.get("subjectAlternativeNames") or [])]
        # As ACM answers: one CNAME per name, in an order of its own (here reversed, so code that relies on it fails).
        options = [{"domainName": name, "resourceRecordName": f"_{_hex(name, 32)}.{name}.", "resourceRecordType": "CNAME",
                    "resourceRecordValue": f"_{_hex(name + 'value', 32)}.{_hex(name, 10)}.acm-validations.aws."}
                   for name in reversed(names)]
        return {"id": arn, "arn": arn, "domainValidationOptions": options, "status": "PENDING_VALIDATION"}

    def _certificate_validation(self, logical: str, inputs: dict) -> dict:
        return {"id": "2026-01-01 00:00:00 +0000 UTC"}  # the provider's id is the time the certificate was issued

    def _record(self, logical: str, inputs: dict) -> dict:
        name = inputs["name"].rstrip(".")
        return {"id": f"{inputs['zoneId']}_{name}_{inputs['type']}", "fqdn": name}

    def _flow_log(self, logical: str, inputs: dict) -> dict:
        flow_log_id = f"fl-{_hex(logical, 17)}"
        return {"id": flow_log_id, "arn": self._arn("ec2", f"vpc-flow-log/{flow_log_id}")}

    def _trail(self, logical: str, inputs: dict) -> dict:
        # The provider's id is the trail's ARN.
        arn = self._arn("cloudtrail", f"trail/{self._physical_name(logical, inputs)}")
        return {"id": arn, "arn": arn, "homeRegion": self.region}

    def _queue(self, logical: str, inputs: dict) -> dict:
        name = self._physical_name(logical, inputs)
        url = f"https://sqs.{self.region}.amazonaws.com/{ACCOUNT_ID}/{name}"
        return {"id": url, "url": url, "name": name, "arn": self._arn("sqs", name)}

    def _event_rule(self, logical: str, inputs: dict) -> dict:
        name = self._physical_name(logical, inputs)
        return {"id": name, "name": name, "arn": self._arn("events", f"rule/{name}")}

    def _bucket(self, logical: str, inputs: dict) -> dict:
        bucket = inputs.get("bucket") or f"{logical}-{_hex(logical, 7)}".lower()
        return {"id": bucket, "bucket": bucket, "arn": f"arn:{PARTITION}:s3:::{bucket}",
                "bucketRegionalDomainName": f"{bucket}.s3.{self.region}.amazonaws.com"}

    def _role(self, logical: str, inputs: dict) -> dict:
        name = self._physical_name(logical, inputs)
        return {"id": name, "name": name, "arn": f"arn:{PARTITION}:iam::{ACCOUNT_ID}:role/{name}", "uniqueId": f"AROA{_hex(name, 17).upper()}"}

    def _oidc_provider(self, logical: str, inputs: dict) -> dict:
        host = inputs["url"].removeprefix("https://")
        arn = f"arn:{PARTITION}:iam::{ACCOUNT_ID}:oidc-provider/{host}"
        return {"id": arn, "arn": arn}

    def _kms_key(self, logical: str, inputs: dict) -> dict:
        digest = _hex(logical, 32)
        key_id = f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
        return {"id": key_id, "keyId": key_id, "arn": self._arn("kms", f"key/{key_id}")}

    def _eks_cluster(self, logical: str, inputs: dict) -> dict:
        name = self._physical_name(logical, inputs)
        digest = _hex(name, 32).upper()
        vpc_config = {**inputs.get("vpcConfig", {}), "clusterSecurityGroupId": f"sg-{_hex(name + 'cluster', 17)}",
                      "vpcId": "vpc-from-subnets"}
        return {
            "id": name, "name": name, "arn": self._arn("eks", f"cluster/{name}"),
            "endpoint": f"https://{digest}.gr7.{self.region}.eks.amazonaws.com",
            "certificateAuthority": {"data": base64.b64encode(b"offline-plan-ca").decode()},
            "identities": [{"oidcs": [{"issuer": f"https://oidc.eks.{self.region}.amazonaws.com/id/{digest}"}]}],
            "vpcConfig": vpc_config, "status": "ACTIVE",
        }

    def _db_instance(self, logical: str, inputs: dict) -> dict:
        identifier = inputs.get("identifier") or f"{logical}-{_hex(logical, 7)}".lower()
        address = f"{identifier}.{_hex(identifier, 12)}.{self.region}.rds.amazonaws.com"
        return {"id": identifier, "identifier": identifier, "address": address, "port": 5432,
                "endpoint": f"{address}:5432", "arn": self._arn("rds", f"db:{identifier}"),
                "resourceId": f"db-{_hex(identifier, 26).upper()}"}

    def _replication_group(self, logical: str, inputs: dict) -> dict:
        group_id = inputs.get("replicationGroupId") or f"{logical}-{_hex(logical, 7)}".lower()
        domain = f"{group_id}.{_hex(group_id, 6)}.{self.region.replace('-', '')[:6]}.cache.amazonaws.com"
        return {"id": group_id, "replicationGroupId": group_id, "arn": self._arn("elasticache", f"replicationgroup:{group_id}"),
                "primaryEndpointAddress": f"master.{domain}", "readerEndpointAddress": f"replica.{domain}", "port": 6379}

    def _topic(self, logical: str, inputs: dict) -> dict:
        name = self._physical_name(logical, inputs)
        arn = self._arn("sns", name)
        return {"id": arn, "arn": arn, "name": name}

    def _log_group(self, logical: str, inputs: dict) -> dict:
        name = self._physical_name(logical, inputs)
        return {"id": name, "name": name, "arn": self._arn("logs", f"log-group:{name}")}

    def _launch_template(self, logical: str, inputs: dict) -> dict:
        return {"id": f"lt-{_hex(logical, 17)}", "latestVersion": 1, "arn": self._arn("ec2", f"launch-template/lt-{_hex(logical, 17)}")}

    def _random_password(self, logical: str, inputs: dict) -> dict:
        # Deterministic and obviously fake; the SDK marks `result` secret, so it never shows in the plan.
        return {"result": f"offline-{_hex(logical, int(inputs.get('length', 32)) - 8)}"}

    def _secret(self, logical: str, inputs: dict) -> dict:
        # Secrets Manager appends six random characters to the name in the ARN.
        name = self._physical_name(logical, inputs)
        arn = self._arn("secretsmanager", f"secret:{name}-{_hex(name, 6)}")
        return {"id": arn, "arn": arn, "name": name}

    def _random_id(self, logical: str, inputs: dict) -> dict:
        data = hashlib.sha256(logical.encode()).digest()[: int(inputs["byteLength"])]
        return {"hex": data.hex(), "b64Std": base64.b64encode(data).decode(),
                "b64Url": base64.urlsafe_b64encode(data).decode().rstrip("="), "dec": str(int.from_bytes(data, "big"))}

    # --- invokes ---------------------------------------------------------------------------------

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        token, params = args.token, args.args
        if token == "aws:iam/getPolicyDocument:getPolicyDocument":
            document = render_policy_document(params)
            return {"id": _hex(document, 10), "json": document, "minifiedJson": json.dumps(json.loads(document), separators=(",", ":"))}
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            short = "".join(part[0] for part in self.region.split("-")[:-1]) + self.region.split("-")[-1]
            return {"id": self.region, "names": self.zone_names,
                    "zoneIds": [f"{short}-az{i}" for i in range(1, len(self.zone_names) + 1)]}
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"id": ACCOUNT_ID, "accountId": ACCOUNT_ID, "arn": f"arn:{PARTITION}:iam::{ACCOUNT_ID}:user/offline-plan",
                    "userId": "AIDAOFFLINEPLAN"}
        if token == "aws:index/getPartition:getPartition":
            return {"id": PARTITION, "partition": PARTITION, "dnsSuffix": "amazonaws.com", "reverseDnsPrefix": "com.amazonaws"}
        if token == "aws:ec2/getSubnet:getSubnet":
            subnet_id = params["id"]
            zone = self._subnet_zones.setdefault(subnet_id, self.zone_names[len(self._subnet_zones) % len(self.zone_names)])
            # An existing subnet's range: a /20 of 10.90.0.0/16 by the order the subnet was first looked up in.
            cidr = f"10.90.{16 * list(self._subnet_zones).index(subnet_id)}.0/20"
            return {"id": subnet_id, "availabilityZone": zone, "vpcId": params.get("vpcId", "vpc-existing"), "cidrBlock": cidr}
        raise NotImplementedError(f"the offline plan has no answer for the invoke {token}")
