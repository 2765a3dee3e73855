"""Where the stack runs: account, partition and region, read at plan time."""

from __future__ import annotations

from constructs import Construct

from components.aws import data_aws_caller_identity, data_aws_partition, data_aws_region


class Account(Construct):
    """Data sources for the account, partition and region of the provider.

    Attributes:
        account_id, partition, region, dns_suffix: tokens for ARNs and service principals.
    """

    def __init__(self, scope: Construct, id_: str) -> None:
        super().__init__(scope, id_)
        identity = data_aws_caller_identity.DataAwsCallerIdentity(self, "identity")
        partition = data_aws_partition.DataAwsPartition(self, "partition")
        region = data_aws_region.DataAwsRegion(self, "region")
        self.account_id: str = identity.account_id
        self.partition: str = partition.partition
        self.dns_suffix: str = partition.dns_suffix
        self.region: str = region.name
