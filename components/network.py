"""VPC: public and private subnets per AZ, NAT, S3 gateway endpoint, flow logs."""

from __future__ import annotations

from cdktf import Fn
from constructs import Construct

from components.aws import (
    data_aws_availability_zones,
    default_security_group,
    eip,
    flow_log,
    iam_role,
    iam_role_policy,
    internet_gateway,
    nat_gateway,
    route,
    route_table,
    route_table_association,
    subnet,
    vpc,
    vpc_endpoint,
)
from components.observability import LogGroups
from components.policy import assume_role_policy, policy_document, statement
from environments.schema import NetworkConfig


class Network(Construct):
    """A VPC spread over ``config.az_count`` AZs, its flow logs in the ``vpc-flow-logs`` log group.

    Attributes:
        vpc_id, vpc_cidr: the VPC.
        public_subnet_ids: for the internet-facing ALB and the NAT gateways.
        private_subnet_ids: for every task, instance and internal ALB.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        region: str,
        config: NetworkConfig,
        logs: LogGroups,
    ) -> None:
        super().__init__(scope, id_)
        cidr = config.cidr
        public_cidrs, private_cidrs = config.subnet_cidrs()
        nat_per_az = config.nat == "per_az"
        zones = data_aws_availability_zones.DataAwsAvailabilityZones(
            self,
            "zones",
            state="available",
            filter=[
                data_aws_availability_zones.DataAwsAvailabilityZonesFilter(
                    name="opt-in-status", values=["opt-in-not-required"]
                )
            ],
        )
        network = vpc.Vpc(
            self, "vpc", cidr_block=cidr, enable_dns_hostnames=True, enable_dns_support=True, tags={"Name": name}
        )
        self.vpc_id: str = network.id
        self.vpc_cidr: str = cidr
        # The default security group allows all traffic between its members; nothing
        # should use it, so it is emptied of rules.
        default_security_group.DefaultSecurityGroup(
            self, "default-sg", vpc_id=network.id, tags={"Name": f"{name}-default-unused"}
        )

        gateway = internet_gateway.InternetGateway(self, "igw", vpc_id=network.id, tags={"Name": name})
        public_routes = route_table.RouteTable(self, "public-rt", vpc_id=network.id, tags={"Name": f"{name}-public"})
        route.Route(
            self,
            "public-default",
            route_table_id=public_routes.id,
            destination_cidr_block="0.0.0.0/0",
            gateway_id=gateway.id,
        )

        self.public_subnet_ids: list[str] = []
        self.private_subnet_ids: list[str] = []
        private_route_table_ids: list[str] = []
        nat_ids: list[str] = []
        for index, (public_cidr, private_cidr) in enumerate(zip(public_cidrs, private_cidrs, strict=True)):
            zone = Fn.element(zones.names, index)
            public = subnet.Subnet(
                self,
                f"public-{index}",
                vpc_id=network.id,
                cidr_block=public_cidr,
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags={"Name": f"{name}-public-{index}", "Tier": "public"},
            )
            route_table_association.RouteTableAssociation(
                self, f"public-{index}-rta", subnet_id=public.id, route_table_id=public_routes.id
            )
            self.public_subnet_ids.append(public.id)
            if nat_per_az or index == 0:
                address = eip.Eip(self, f"nat-{index}-eip", domain="vpc", tags={"Name": f"{name}-nat-{index}"})
                nat = nat_gateway.NatGateway(
                    self,
                    f"nat-{index}",
                    allocation_id=address.id,
                    subnet_id=public.id,
                    tags={"Name": f"{name}-nat-{index}"},
                    depends_on=[gateway],
                )
                nat_ids.append(nat.id)
            private = subnet.Subnet(
                self,
                f"private-{index}",
                vpc_id=network.id,
                cidr_block=private_cidr,
                availability_zone=zone,
                tags={"Name": f"{name}-private-{index}", "Tier": "private"},
            )
            private_routes = route_table.RouteTable(
                self, f"private-{index}-rt", vpc_id=network.id, tags={"Name": f"{name}-private-{index}"}
            )
            route.Route(
                self,
                f"private-{index}-default",
                route_table_id=private_routes.id,
                destination_cidr_block="0.0.0.0/0",
                nat_gateway_id=nat_ids[-1],
            )
            route_table_association.RouteTableAssociation(
                self, f"private-{index}-rta", subnet_id=private.id, route_table_id=private_routes.id
            )
            self.private_subnet_ids.append(private.id)
            private_route_table_ids.append(private_routes.id)

        # Image layers from ECR and model weights staged in S3 stay off the NAT gateways.
        vpc_endpoint.VpcEndpoint(
            self,
            "s3-endpoint",
            vpc_id=network.id,
            service_name=f"com.amazonaws.{region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=private_route_table_ids,
            tags={"Name": f"{name}-s3"},
        )
        self._flow_logs(name, network.id, logs.group("vpc-flow-logs").arn)

    def _flow_logs(self, name: str, vpc_id: str, group_arn: str) -> None:
        role = iam_role.IamRole(
            self,
            "flow-logs-role",
            name=f"{name}-flow-logs",
            assume_role_policy=assume_role_policy("vpc-flow-logs.amazonaws.com"),
        )
        iam_role_policy.IamRolePolicy(
            self,
            "flow-logs-policy",
            name=f"{name}-write-flow-logs",
            role=role.id,
            policy=policy_document(
                statement(
                    action=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                    resource=[group_arn, f"{group_arn}:*"],
                )
            ),
        )
        flow_log.FlowLog(
            self,
            "flow-log",
            vpc_id=vpc_id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=group_arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=60,
            tags={"Name": f"{name}-flow-log"},
        )
