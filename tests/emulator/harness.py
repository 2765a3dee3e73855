"""Deploy a synthesized stack to moto in server mode on 127.0.0.1, re-plan it, destroy it.

Two halves in one module:

* the server (``python -m tests.emulator.harness``): imports moto, applies the patches
  below for the emulator's known gaps, seeds what it lacks, serves on a free port of
  127.0.0.1 and prints ``PORT <n>`` once it listens. Patches live here, in the
  emulator's process, never in the product: the product's JSON must stay what real
  AWS gets.
* the client (:class:`Emulator`, :func:`stage_stack`, :class:`Deployment`): starts and
  always stops that server, copies a synthesized stack to a temporary directory with its
  backend switched to local state there (the product's own cdktf.out is never touched),
  and drives the real ``cdktf deploy`` and ``terraform plan/destroy`` against it with
  AWS_ENDPOINT_URL and test credentials in the subprocess environment only.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parents[2]
GPU_AMI_PARAMETER = "/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id"
# A stand-in AMI id for when the emulator's bundled public parameters lack the GPU AMI.
PLACEHOLDER_GPU_AMI = "ami-0123456789abcdef0"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
PROGRESS = re.compile(r"Still (creating|destroying|modifying)\.\.\.|^\d+ Stacks? deploying ")


# --------------------------------------------------------------------------- server


def _patch_application_autoscaling_tags() -> None:
    """Application Auto Scaling: keep the tags of scalable targets.

    Real AWS stores the Tags of RegisterScalableTarget and serves ListTagsForResource,
    TagResource and UntagResource. moto 5.2 implements none of them: the provider then
    retries ListTagsForResource until it times out, and without stored tags every plan
    wants to add default_tags to each target again.
    """
    from moto.applicationautoscaling.responses import ApplicationAutoScalingResponse as Response

    def tag_store(self: Any) -> dict[str, dict[str, str]]:
        backend = self.applicationautoscaling_backend
        if not hasattr(backend, "harness_tags"):
            backend.harness_tags = {}
        return backend.harness_tags

    register = Response.register_scalable_target
    deregister = Response.deregister_scalable_target

    def register_scalable_target(self: Any) -> str:
        body = register(self)
        arn = json.loads(body)["ScalableTargetARN"]
        tag_store(self).setdefault(arn, {}).update(self._get_param("Tags") or {})
        return body

    def deregister_scalable_target(self: Any) -> str:
        targets = self.applicationautoscaling_backend.describe_scalable_targets(
            self._get_param("ServiceNamespace"), [self._get_param("ResourceId")], self._get_param("ScalableDimension")
        )
        body = deregister(self)
        for target in targets:
            tag_store(self).pop(target.arn, None)
        return body

    def list_tags_for_resource(self: Any) -> str:
        return json.dumps({"Tags": tag_store(self).get(self._get_param("ResourceARN"), {})})

    def tag_resource(self: Any) -> str:
        tag_store(self).setdefault(self._get_param("ResourceARN"), {}).update(self._get_param("Tags") or {})
        return "{}"

    def untag_resource(self: Any) -> str:
        tags = tag_store(self).get(self._get_param("ResourceARN"), {})
        for key in self._get_param("TagKeys") or []:
            tags.pop(key, None)
        return "{}"

    Response.register_scalable_target = register_scalable_target
    Response.deregister_scalable_target = deregister_scalable_target
    Response.list_tags_for_resource = list_tags_for_resource
    Response.tag_resource = tag_resource
    Response.untag_resource = untag_resource


# CreateService arguments real ECS returns in DescribeServices and moto 5.2 drops.
ECS_SERVICE_FIELDS = (
    "capacityProviderStrategy",
    "placementStrategy",
    "placementConstraints",
    "availabilityZoneRebalancing",
    "deploymentConfiguration",
    "enableECSManagedTags",
    "enableExecuteCommand",
    "healthCheckGracePeriodSeconds",
)


def _patch_ecs_create_service() -> None:
    """ECS: remember what CreateService was asked for, and run the desired count.

    Real ECS echoes capacityProviderStrategy, placementStrategy, availabilityZoneRebalancing,
    deploymentConfiguration (circuit breaker, percentages), enableECSManagedTags and
    healthCheckGracePeriodSeconds back in DescribeServices; moto 5.2 drops them, so every
    re-plan wants to replace the services on the GPU capacity provider and update the rest.

    A service without awsvpc (the GPU metrics daemon, bridge network mode) has no
    networkConfiguration in real ECS's DescribeServices; moto 5.2 returns an empty one, and
    the AWS provider 5.100 dereferences its missing awsvpcConfiguration and crashes
    (flattenNetworkConfiguration, internal/service/ecs/service.go).

    Real ECS also starts the tasks and reports them in runningCount; moto 5.2 starts none
    (runningCount 0 unless MOTO_ECS_SERVICE_RUNNING says otherwise, for every service),
    so a service with wait_for_steady_state would wait for its whole timeout. A new
    service here reports its desired count running at once, its deployment completed.
    """
    from botocore import xform_name
    from moto.ecs.responses import EC2ContainerServiceResponse as Response

    create = Response.create_service

    def create_service(self: Any) -> Any:
        result = create(self)
        service = self.ecs_backend._get_service(self._get_param("cluster", "default"), self._get_param("serviceName"))
        for name in ECS_SERVICE_FIELDS:
            value = self._get_param(name)
            if value is not None:
                setattr(service, xform_name(name), value)
        if not service.network_configuration:
            service.network_configuration = None
        service.running_count, service.pending_count = service.desired_count, 0
        for deployment in service.deployments:
            deployment.update(runningCount=service.desired_count, pendingCount=0, rolloutState="COMPLETED")
        return result

    Response.create_service = create_service


def _patch_launch_template_tags() -> None:
    """EC2: a launch template's own tags are not part of its launch data.

    Real EC2 keeps the tags of CreateLaunchTemplate's TagSpecifications (resource type
    launch-template) on the template only; moto 5.2 also copies them into the version's
    LaunchTemplateData.TagSpecifications, which the provider reads back as a
    tag_specifications block nobody configured: a diff on every plan.
    """
    from moto.ec2.models.launch_templates import LaunchTemplateBackend

    create = LaunchTemplateBackend.create_launch_template

    def create_launch_template(
        self: Any, name: str, description: str, template_data: dict[str, Any], tag_spec: dict[str, Any]
    ) -> Any:
        specs = template_data.get("TagSpecifications")
        if specs:
            template_data["TagSpecifications"] = [
                spec for spec in specs if spec.get("ResourceType") != "launch-template"
            ]
            if not template_data["TagSpecifications"]:
                del template_data["TagSpecifications"]
        return create(self, name, description, template_data, tag_spec)

    LaunchTemplateBackend.create_launch_template = create_launch_template


def _patch_instance_protection_scale_in() -> None:
    """Auto Scaling: lifting scale-in protection lets the group shrink to its desired capacity.

    Real Auto Scaling keeps reconciling a group with its desired capacity, so instances
    above it are terminated as soon as their scale-in protection is removed. Destroying a
    group whose instances are protected (ours: managed termination protection needs it),
    the provider sets the capacity to 0, then lifts the protection and waits for the
    group to drain; moto 5.2 only reconciles on a capacity change and the wait times out.
    """
    from moto.autoscaling.models import AutoScalingBackend

    protect = AutoScalingBackend.set_instance_protection

    def set_instance_protection(
        self: Any, group_name: str, instance_ids: list[str], protected_from_scale_in: bool | None
    ) -> None:
        protect(self, group_name, instance_ids, protected_from_scale_in)
        if not protected_from_scale_in:
            group = self.autoscaling_groups[group_name]
            group.set_desired_capacity(group.desired_capacity)

    AutoScalingBackend.set_instance_protection = set_instance_protection


def _patch_instance_refresh() -> None:
    """Auto Scaling: accept and record instance refreshes.

    Real Auto Scaling implements StartInstanceRefresh, DescribeInstanceRefreshes and
    CancelInstanceRefresh and then replaces the group's instances; moto 5.2 implements
    none of them, and the provider starts a refresh whenever a group with an
    instance_refresh block gets a new launch template version. Here a refresh is only
    recorded, with the preferences and desired configuration it was started with, and
    stays Pending: no instance is replaced (nothing runs in the emulator anyway). A second
    start while one is pending fails with InstanceRefreshInProgress, as on AWS.
    """
    import uuid
    from datetime import datetime

    from moto.autoscaling.exceptions import AutoscalingClientError
    from moto.autoscaling.responses import AutoScalingResponse as Response
    from moto.core.responses import ActionResult

    class InstanceRefreshInProgress(AutoscalingClientError):
        code = "InstanceRefreshInProgress"

    class ActiveInstanceRefreshNotFound(AutoscalingClientError):
        code = "ActiveInstanceRefreshNotFound"

    active = ("Pending", "InProgress", "Cancelling")

    def refreshes(self: Any) -> dict[str, list[dict[str, Any]]]:
        backend = self.autoscaling_backend
        if not hasattr(backend, "harness_instance_refreshes"):
            backend.harness_instance_refreshes = {}
        return backend.harness_instance_refreshes

    def start_instance_refresh(self: Any) -> ActionResult:
        group = self._get_param("AutoScalingGroupName")
        self.autoscaling_backend.describe_auto_scaling_groups([group])  # raises for an unknown group
        known = refreshes(self).setdefault(group, [])
        if any(refresh["Status"] in active for refresh in known):
            raise InstanceRefreshInProgress(
                "An Instance Refresh is already in progress and blocks the execution of this Instance Refresh."
            )
        refresh = {
            "InstanceRefreshId": str(uuid.uuid4()),
            "AutoScalingGroupName": group,
            "Status": "Pending",
            "StatusReason": "recorded by the emulator harness; no instance is replaced",
            "StartTime": datetime.now(UTC),
            "PercentageComplete": 0,
            "Preferences": self._get_param("Preferences") or {},
            "DesiredConfiguration": self._get_param("DesiredConfiguration") or {},
        }
        known.insert(0, refresh)
        return ActionResult({"InstanceRefreshId": refresh["InstanceRefreshId"]})

    def describe_instance_refreshes(self: Any) -> ActionResult:
        known = refreshes(self).get(self._get_param("AutoScalingGroupName"), [])
        wanted = self._get_param("InstanceRefreshIds") or []
        return ActionResult(
            {
                "InstanceRefreshes": [
                    refresh for refresh in known if not wanted or refresh["InstanceRefreshId"] in wanted
                ]
            }
        )

    def cancel_instance_refresh(self: Any) -> ActionResult:
        for refresh in refreshes(self).get(self._get_param("AutoScalingGroupName"), []):
            if refresh["Status"] in active:
                refresh["Status"] = "Cancelled"
                return ActionResult({"InstanceRefreshId": refresh["InstanceRefreshId"]})
        raise ActiveInstanceRefreshNotFound(
            "No in progress or pending Instance Refresh found for this Auto Scaling group."
        )

    Response.start_instance_refresh = start_instance_refresh
    Response.describe_instance_refreshes = describe_instance_refreshes
    Response.cancel_instance_refresh = cancel_instance_refresh


def _patch_security_group_rule_descriptions() -> None:
    """EC2: a rule that references a security group keeps its description.

    Real EC2's DescribeSecurityGroupRules returns the Description of every rule; moto 5.2
    reads it from the CIDR range only, so a rule between two security groups comes back
    without one and every plan wants to set it again.
    """
    from moto.ec2.models.security_groups import SecurityGroupRule

    def description(self: Any) -> str | None:
        return self.ip_range.get("Description") or self.source_group.get("Description")

    SecurityGroupRule.description = property(description)


def _patch_idempotent_vpc_endpoint_delete() -> None:
    """EC2: deleting a gateway endpoint twice, or after its routes are gone, succeeds.

    Real EC2 removes a gateway endpoint's routes itself and answers a repeated
    DeleteVpcEndpoints without an error. moto 5.2 deletes the routes again on every call
    and raises InvalidRoute.NotFound when one is already gone; seen once in CI when a
    loaded machine made the provider retry the delete.
    """
    from moto.ec2.exceptions import InvalidRouteError, InvalidRouteTableIdError
    from moto.ec2.models.vpcs import VPCBackend

    def delete_vpc_endpoints(self: Any, vpce_ids: list[str] | None = None) -> None:
        for vpce_id in vpce_ids or []:
            endpoint = self.vpc_end_points.get(vpce_id)
            if endpoint is None or endpoint.state == "deleted":
                continue
            if endpoint.vpc_endpoint_type.lower() == "interface":
                for eni_id in endpoint.network_interface_ids:
                    self.enis.pop(eni_id, None)
            else:
                for route_table_id in endpoint.route_table_ids:
                    try:
                        self.delete_route(route_table_id, endpoint.destination_prefix_list_id)
                    except (InvalidRouteError, InvalidRouteTableIdError):
                        pass  # already gone: nothing left to remove
            endpoint.state = "deleted"

    VPCBackend.delete_vpc_endpoints = delete_vpc_endpoints


def _patch_listener_certificates() -> None:
    """ELBv2: an HTTPS listener's certificate is the user's, not the emulator's.

    Real AWS checks that the certificate exists in the account's ACM, and it does there:
    the environment file names the user's certificate. The emulator's ACM never holds it,
    and moto 5.2 rejects the listener with CertificateNotFound; accept unknown ACM ARNs.
    """
    from moto.elb.exceptions import CertificateNotFoundException
    from moto.elbv2 import models as elbv2_models

    register = elbv2_models.register_certificate

    def register_certificate(account_id: str, region: str, arn_certificate: str, arn_user: str) -> None:
        try:
            register(account_id=account_id, region=region, arn_certificate=arn_certificate, arn_user=arn_user)
        except CertificateNotFoundException:
            pass

    elbv2_models.register_certificate = register_certificate


def _patch_waf_external_acls() -> None:
    """WAFv2: the web ACL associated with the ALB is the user's, not the emulator's.

    Real AWS associates an existing regional web ACL from the user's account; the
    environment file names it. The emulator holds no such ACL and moto 5.2 raises
    WAFNonexistentItemException, so an empty ACL with that ARN is created on first use.
    """
    from moto.wafv2.models import FakeWebACL, WAFV2Backend

    associate = WAFV2Backend.associate_web_acl

    def associate_web_acl(self: Any, web_acl_arn: str, resource_arn: str) -> None:
        if web_acl_arn not in self.wacls:
            name, wacl_id = web_acl_arn.rsplit("/", 2)[-2:]
            self.wacls[web_acl_arn] = FakeWebACL(
                name=name,
                account=self.account_id,
                arn=web_acl_arn,
                wacl_id=wacl_id,
                visibility_config={
                    "SampledRequestsEnabled": False,
                    "CloudWatchMetricsEnabled": False,
                    "MetricName": name,
                },
                default_action={"Allow": {}},
                description="stand-in for the user's web ACL (tests/emulator/harness.py)",
                rules=[],
            )
        associate(self, web_acl_arn, resource_arn)

    WAFV2Backend.associate_web_acl = associate_web_acl


def _patch_efs_delete_file_system_policy() -> None:
    """EFS: DeleteFileSystemPolicy removes a file system's policy.

    Real EFS deletes the policy (the default one applies again) and answers 200; moto 5.2
    does not implement the call, so destroying the etcd data file system's policy fails
    with a 500 the provider keeps retrying.
    """
    from moto.efs.exceptions import FileSystemNotFound
    from moto.efs.responses import EFSResponse

    def delete_file_system_policy(self: Any) -> tuple[str, dict[str, str]]:
        file_system_id = self._get_param("FileSystemId")
        file_system = self.efs_backend.file_systems_by_id.get(file_system_id)
        if file_system is None:
            raise FileSystemNotFound(file_system_id)
        file_system.file_system_policy = None
        return "{}", {"Content-Type": "application/json"}

    EFSResponse.delete_file_system_policy = delete_file_system_policy


def _seed_gpu_ami(regions: list[str]) -> None:
    """The public SSM parameter for the ECS GPU AMI (moto 5.2 bundles it; older releases did not)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ssm.models import Parameter, ssm_backends

    for region in regions:
        store = ssm_backends[DEFAULT_ACCOUNT_ID][region]._parameters
        if store[GPU_AMI_PARAMETER]:
            continue
        store[GPU_AMI_PARAMETER].append(
            Parameter(
                account_id=DEFAULT_ACCOUNT_ID,
                name=GPU_AMI_PARAMETER,
                value=PLACEHOLDER_GPU_AMI,
                parameter_type="String",
                description=None,
                allowed_pattern=None,
                keyid=None,
                last_modified_date=time.time(),
                version=1,
                data_type="aws:ec2:image",
            )
        )


def _one_request_at_a_time(app: Any) -> Any:
    """Serialize requests into moto's backends, which are not thread-safe.

    Real AWS serializes changes per resource. moto 5.2 mutates plain dicts and lists
    from every server thread: with three stacks deploying in parallel (and Terraform's
    ten concurrent operations each), concurrent revokes on one security group or a
    retried endpoint delete occasionally found a rule or route "not found" (seen in CI).
    Connections stay threaded; only the work inside moto takes turns.
    """
    lock = threading.Lock()

    def serialized(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        with lock:
            return list(app(environ, start_response))

    return serialized


def _whole_responses() -> type:
    """A werkzeug request handler that sends each response in one write, headers with body.

    werkzeug's handler writes the headers, then the body, as two sends. Under load the
    handler thread can wait 100 ms or more for the GIL between them, and the provider's
    HTTP client sometimes closes the connection after reading the headers alone (seen
    in packet captures: FIN after the headers, RST when the body arrives); the AWS SDK
    then sends the request again. moto has already carried out the first one, so a
    repeated write fails, e.g. a revoke finds no rule (InvalidPermission.NotFound). A
    buffered socket writer holds the headers until werkzeug flushes after the body.
    """
    from werkzeug.serving import WSGIRequestHandler

    class WholeResponses(WSGIRequestHandler):
        # socketserver then gives a buffered writer instead of one send per write; the
        # largest response our stacks cause is ~3 KB, so 64 KiB holds any of them whole.
        wbufsize = 64 * 1024

    return WholeResponses


def serve(regions: list[str]) -> None:
    # AWS managed policies (AmazonECSTaskExecutionRolePolicy, ...) exist in every real
    # account; moto loads them only when asked.
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
    # ECS: real ECS starts a service's tasks and DescribeServices reports them running; moto
    # 5.2 starts none and reports runningCount from this variable (default 0), so a service
    # with wait_for_steady_state (the etcd members) would never become steady. Every service
    # here runs one task per deployment step or has no waiter, so 1 is what real ECS reports.
    os.environ["MOTO_ECS_SERVICE_RUNNING"] = "1"
    import logging
    import signal

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    _patch_application_autoscaling_tags()
    _patch_ecs_create_service()
    _patch_launch_template_tags()
    _patch_instance_protection_scale_in()
    _patch_instance_refresh()
    _patch_security_group_rule_descriptions()
    _patch_idempotent_vpc_endpoint_delete()
    _patch_listener_certificates()
    _patch_waf_external_acls()
    _patch_efs_delete_file_system_policy()
    _seed_gpu_ami(regions)
    # One log line per request costs time and buries the errors worth reading.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = make_server(
        "127.0.0.1",
        0,
        _one_request_at_a_time(DomainDispatcherApplication(create_backend_app)),
        threaded=True,
        request_handler=_whole_responses(),
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"PORT {server.server_address[1]}", flush=True)
    # Nobody reads the pipe after the port: anything else printed goes to the log.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


# --------------------------------------------------------------------------- client


class Emulator:
    """The moto server as a child process; a context manager that always stops it."""

    def __init__(self, workdir: Path, regions: list[str]) -> None:
        self.workdir = workdir
        self.regions = regions
        self.log_path = workdir / "moto.log"
        self.port: int | None = None
        self._process: subprocess.Popen[str] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> Emulator:
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
        with self.log_path.open("w") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "tests.emulator.harness", *self.regions],
                cwd=PROJECT_DIR,
                env=env,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                # Its own session: a Ctrl-C in the terminal must not stop it before the
                # stack on it is destroyed; stop() ends it.
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        assert self._process.stdout is not None
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self._process.stdout], [], [], 0.5)
            if ready:
                line = self._process.stdout.readline()
                if line.startswith("PORT "):
                    self.port = int(line.split()[1])
                    return self
                if not line:
                    break
            if self._process.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"the emulator did not start:\n{self.log_tail()}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def errors(self) -> str:
        """The emulator's own failures (500s: an unimplemented action or a moto bug), if any."""
        if not self.log_path.exists():
            return ""
        found = [
            line
            for line in self.log_path.read_text(errors="replace").splitlines()
            if re.match(r"^\w*(Error|Exception)\b", line)
        ]
        return "\n".join(sorted(set(found)))

    def env(self, base: dict[str, str], region: str) -> dict[str, str]:
        """``base`` with every AWS setting replaced by the emulator's, and no proxy between."""
        env = {
            key: value
            for key, value in base.items()
            if not key.startswith("AWS_") and key.lower() not in PROXY_VARIABLES
        }
        env.update(
            AWS_ENDPOINT_URL=self.endpoint,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_REGION=region,
            AWS_DEFAULT_REGION=region,
            # Never ask the EC2 instance metadata service (169.254.169.254) for anything.
            AWS_EC2_METADATA_DISABLED="true",
            AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
            NO_PROXY="127.0.0.1,localhost",
        )
        return env


PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def stage_stack(synth_dir: Path, stack: str, workdir: Path) -> Path:
    """A cdktf.out holding only ``stack``, its backend switched to local state in ``workdir``."""
    manifest = json.loads((synth_dir / "manifest.json").read_text())
    entry = manifest["stacks"][stack]
    manifest["stacks"] = {stack: entry}
    outdir = workdir / "cdktf.out"
    shutil.copytree(synth_dir / entry["workingDirectory"], outdir / entry["workingDirectory"])
    (outdir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    path = outdir / entry["synthesizedStackPath"]
    document = json.loads(path.read_text())
    document["terraform"]["backend"] = {"local": {"path": str(workdir / "terraform.tfstate")}}
    path.write_text(json.dumps(document, indent=2))
    return outdir


def stack_region(outdir: Path, stack: str) -> str:
    document = json.loads((outdir / "stacks" / stack / "cdk.tf.json").read_text())
    return document["provider"]["aws"][0]["region"]


@dataclass
class Step:
    name: str
    command: list[str]
    returncode: int
    seconds: float
    output: str

    def report(self, tail: int = 60) -> str:
        """Terraform's own error messages first, then the last lines of the output."""
        lines = [line if len(line) <= 600 else line[:600] + " ..." for line in self.output.splitlines()]
        errors = terraform_errors(lines)
        shown = "\n".join(lines[-tail:])
        head = f"`{' '.join(self.command)}` exited {self.returncode} after {self.seconds:.0f}s"
        return (
            f"{head}\n--- Terraform's errors ---\n{errors}\n--- last {tail} lines ---\n{shown}"
            if errors
            else f"{head}:\n{shown}"
        )


ERROR_LINE = re.compile(r"(^|[\s│])Error: ")


def terraform_errors(lines: list[str]) -> str:
    """Each ``Error:`` diagnostic with the few lines that say where it comes from."""
    blocks = []
    for index, line in enumerate(lines):
        if ERROR_LINE.search(line):
            block = [line]
            for following in lines[index + 1 : index + 8]:
                if ERROR_LINE.search(following) or "Stacks deploying" in following or "Stack deploying" in following:
                    break
                block.append(following)
            blocks.append("\n".join(block).rstrip())
    return "\n\n".join(blocks)


EMULATOR_ARTEFACTS = re.compile(
    r"InvalidPermission\.NotFound|InvalidRoute\.NotFound|Cannot exceed quota for InstanceSessionsPerInstanceProfile"
)


def run_step(
    name: str, command: list[str], cwd: Path, env: dict[str, str], timeout: int, *, stream: bool = False
) -> Step:
    """One command against the emulator, timed, its output kept whole (or streamed)."""
    start = time.monotonic()
    try:
        result = subprocess.run(command, cwd=cwd, env=env, capture_output=not stream, text=True, timeout=timeout)
        returncode, output = result.returncode, (result.stdout or "") + (result.stderr or "")
    except subprocess.TimeoutExpired as expired:
        returncode = -1
        captured = expired.stdout or b""
        output = (
            captured.decode(errors="replace") if isinstance(captured, bytes) else captured
        ) + f"\n(killed after {timeout}s)"
    return Step(name, command, returncode, time.monotonic() - start, output)


def once_more_after_emulator_artefact(run: Callable[[], Step]) -> tuple[Step, str | None]:
    """Repeat a deploy, apply or destroy once when it failed only on a known emulator artefact.

    These messages came from the AWS SDK repeating a request that moto had already
    carried out (RevokeSecurityGroupEgress/Ingress InvalidPermission.NotFound,
    DeleteVpcEndpoints InvalidRoute.NotFound, AddRoleToInstanceProfile LimitExceeded),
    in about half of the runs, until the server sent each response in one piece (see
    _whole_responses): none since. This stays as a net because why the client gave up
    on those connections is not known. A second apply or destroy starts from a
    refreshed state, so a real failure fails again; the empty plan and empty state are
    still asserted afterwards. The timings name each repeat and its reason.
    """
    step = run()
    artefact = EMULATOR_ARTEFACTS.search(step.output) if step.returncode != 0 else None
    if artefact is None:
        return step, None
    return run(), f"{step.name} repeated after {artefact.group(0)}"


@dataclass
class Deployment:
    """deploy -> plan -> destroy -> state list of one staged stack, each step recorded."""

    outdir: Path
    stack: str
    env: dict[str, str]
    terraform: str = "terraform"
    steps: list[Step] = field(default_factory=list)
    repeated_after: list[str] = field(default_factory=list)

    @property
    def stack_dir(self) -> Path:
        return self.outdir / "stacks" / self.stack

    def _run(self, name: str, command: list[str], cwd: Path, timeout: int, stream: bool = False) -> Step:
        step = run_step(name, command, cwd, self.env, timeout, stream=stream)
        # Progress lines say nothing when a step fails; the last lines do.
        lines = ANSI.sub("", step.output).splitlines()
        step.output = "\n".join(line for line in lines if line.strip() and not PROGRESS.search(line))
        self.steps.append(step)
        return step

    def deploy(self, *, stream: bool = False, timeout: int = 900) -> Step:
        """The real cdktf CLI, as users run it; --skip-provider-lock because there is no registry here."""
        npx = shutil.which("npx") or "npx"
        command = [
            npx,
            "cdktf",
            "deploy",
            self.stack,
            "--auto-approve",
            "--skip-synth",
            "--skip-provider-lock",
            "--output",
            str(self.outdir),
        ]
        return self._run("deploy", command, PROJECT_DIR, timeout, stream=stream)

    def plan(self, timeout: int = 600) -> Step:
        return self._run(
            "plan", [self.terraform, "plan", "-detailed-exitcode", "-no-color", "-input=false"], self.stack_dir, timeout
        )

    def destroy(self, *, stream: bool = False, timeout: int = 900) -> Step:
        command = [self.terraform, "destroy", "-auto-approve", "-no-color", "-input=false"]
        return self._run("destroy", command, self.stack_dir, timeout, stream=stream)

    def state_list(self, timeout: int = 120) -> Step:
        return self._run("state list", [self.terraform, "state", "list"], self.stack_dir, timeout)

    def outputs(self) -> dict[str, Any]:
        result = subprocess.run(
            [self.terraform, "output", "-json"],
            cwd=self.stack_dir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            return {}
        return {name: value["value"] for name, value in json.loads(result.stdout).items()}

    def run_all(self) -> Deployment:
        """Stops at the first failing step, except that a failed plan still destroys."""
        if self._once_more_after_emulator_artefact(self.deploy).returncode != 0:
            return self
        self.plan()
        if self._once_more_after_emulator_artefact(self.destroy).returncode == 0:
            self.state_list()
        return self

    def _once_more_after_emulator_artefact(self, run: Callable[[], Step]) -> Step:
        step, repeat = once_more_after_emulator_artefact(run)
        if repeat:
            self.repeated_after.append(repeat)
        return step

    def step(self, name: str) -> Step | None:
        """The last attempt of a step."""
        return next((step for step in reversed(self.steps) if step.name == name), None)

    def timing(self) -> str:
        parts = ", ".join(f"{step.name} {step.seconds:.0f}s" for step in self.steps)
        repeats = "".join(f" ({repeat})" for repeat in self.repeated_after)
        return f"{self.stack}: {parts}; total {sum(step.seconds for step in self.steps):.0f}s{repeats}"


if __name__ == "__main__":
    serve(sys.argv[1:] or ["us-east-1"])
