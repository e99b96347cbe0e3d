"""What a real `pulumi up` / `pulumi destroy` would trip over, which the mocks alone never showed
(issue 10): each test reads what the providers do with our inputs (their source, cited in the
fix) and asserts the input that avoids it. Under the SDK's mocks, with the real `xsltproc` for
the domain XML and the real key parser for host keys."""

from __future__ import annotations

import json
import runpy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from fedinfra.backends.libvirt import NO_GRAPHICS_XSLT
from fedinfra.hostkeys import check_host_key
from fedinfra.settings import CONFIG_KEYS, PROJECT, load_settings
from fedinfra.spec import SpecError, parse_spec
from tests.infra.harness import (
    ROOT,
    Harness,
    fake_home,
    is_secret_wrapper,
    resolve,
    run_program,
    setup,
    stack_config,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

CIDR = "198.51.100.7/32"
AMI = "ami-0123456789abcdef0"
#: the partner host key Pulumi.cloud.yaml carried before: 69 base64 characters
BROKEN_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFedStackExampleHostKeyReplaceWithTheRealOne0"
#: the committed placeholder: well formed, all zeros
ZERO_ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
RSA_KEY = (
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7vbqajDhA0BiEEWBtRsuDCTMNFoIy1hLP2mEsPn+8QTxGlJ"
    "DyRPOCsUnzLwfHTPpGsr3bi4ucUjy2J2VGYgbAAr+Xc0fSvE4HSH8nX3Q0cmKDPZiYE2H3K0rGDi6fJG1IVSa"
    "hJpqrcaFRfoC0YTaqaB/gPDnV4+0w3GZbNWdqLQMvd1IhtOMD3gEkAU7yoSTB66TFZv8UKoCBGXjK5RaLEhG+"
    "x3d7kBC8XmlGMS6XOqXTOVBVX9VfqA93OA3L4MPWL5vH2Vrhq9pPPQmjJ8GsfYK2zNSV4Y3nBLs8Up0pQmMpQH"
    "j/ToLW0MOuzZvCj9n3mZ1JLN5LzQgYsDnHqfPt"
)


def unwrap(value: Any) -> Any:
    return value["value"] if is_secret_wrapper(value) else value


def run_main(h: Harness, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    exports: dict[str, Any] = {}
    monkeypatch.setattr(pulumi, "export", lambda name, value: exports.__setitem__(name, value))
    run_program(lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__"))
    return exports


def cloud(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **extra: str) -> Harness:
    fake_home(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    cfg, secret_keys = stack_config("cloud")
    cfg["fedstack:sshAllowedCidr"] = CIDR
    cfg.update({f"fedstack:{k}": v for k, v in extra.items()})
    h = setup("cloud", cfg, secret_keys)
    h.exports = run_main(h, monkeypatch)
    return h


def settings_with(**values: str) -> dict[str, str]:
    cfg, _ = stack_config("cloud")
    cfg.update({f"fedstack:{k}": v for k, v in values.items()})
    return cfg


# ------------------------------------------------------------- 1. the AMI is kept per stack


def test_instances_keep_their_ami_when_canonical_publishes_a_new_one(monkeypatch, tmp_path):
    h = cloud(monkeypatch, tmp_path)
    for site in ("hospital-a", "hospital-b"):
        # the AWS provider replaces an instance whose `ami` changes: the newest image is only
        # what a new instance starts from
        assert list(h.request(f"{site}-vm").ignoreChanges) == ["ami"]
    assert [c for c in h.mocks.calls if c.token == "aws:ec2/getAmi:getAmi"]


def test_a_set_ami_is_followed_on_purpose(monkeypatch, tmp_path):
    h = cloud(monkeypatch, tmp_path, awsAmi=AMI)
    assert not [c for c in h.mocks.calls if c.token == "aws:ec2/getAmi:getAmi"]
    for site in ("hospital-a", "hospital-b"):
        assert h.mocks.named(f"{site}-vm").inputs["ami"] == AMI
        assert list(h.request(f"{site}-vm").ignoreChanges) == []


def test_a_wrong_ami_is_one_line():
    with pytest.raises(SpecError) as info:
        load_settings(settings_with(awsAmi="ubuntu-noble", sshAllowedCidr=CIDR))
    assert str(info.value) == (
        "config fedstack:awsAmi: 'ubuntu-noble' is not an AMI id like 'ami-0123456789abcdef0'"
    )


# ------------------------------------------- 3. a new sshAllowedCidr changes only the rule


def test_the_cidr_is_not_in_the_group_description(monkeypatch, tmp_path):
    first = cloud(monkeypatch, tmp_path)
    (sg,) = first.mocks.of_type("aws:ec2/securityGroup:SecurityGroup")
    assert CIDR not in sg.inputs["description"]
    other = "203.0.113.9/32"
    second = cloud(monkeypatch, tmp_path, sshAllowedCidr=other)
    (sg2,) = second.mocks.of_type("aws:ec2/securityGroup:SecurityGroup")
    # the description forces a new group in the provider: it must not follow the CIDR
    assert sg2.inputs == sg.inputs
    (rule,) = second.mocks.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert rule.inputs["cidrIpv4"] == other


# -------------------------------------- 4. every command has create and update deadlines


def test_every_command_has_create_and_update_deadlines_and_bounded_dials(monkeypatch, tmp_path):
    h = cloud(monkeypatch, tmp_path)
    commands = h.mocks.of_type("command:remote:Command")
    assert len(commands) == 7
    for cmd in commands:
        timeouts = h.request(cmd.name).customTimeouts
        assert timeouts.create and timeouts.update, cmd.name
        conn = unwrap(cmd.inputs["connection"])
        assert 0 < conn["dialErrorLimit"] < 1000, cmd.name
    assert h.request("partner-lab-host-cleanup").customTimeouts.delete


# -------------------------------------------------------- 5. and 9. pinned keys, for real


def _spec_with_byo_key(key: str) -> dict[str, Any]:
    return {
        "sites": [
            {"name": "alice", "fc_user": "a@x.org", "coordinator": True, "libvirt": {}},
            {
                "name": "bob",
                "fc_user": "b@x.org",
                "ssh": {"address": "192.0.2.1", "user": "fed", "key_file": "/k", "host_key": key},
            },
        ]
    }


def test_an_rsa_host_key_is_refused_in_one_line_naming_the_site():
    with pytest.raises(SpecError) as info:
        parse_spec(_spec_with_byo_key(RSA_KEY))
    line = str(info.value)
    assert line.startswith("site 'bob': ssh.host_key: ssh-rsa host keys cannot be pinned")
    assert "OpenSSH 8.8" in line and "ssh-keyscan -t ed25519" in line and "\n" not in line


@pytest.mark.parametrize(
    ("key", "says"),
    [
        (BROKEN_KEY, "the ssh-ed25519 key is not valid base64"),
        (
            "ecdsa-sha2-nistp256 " + ZERO_ED25519.split()[1],
            "says ecdsa-sha2-nistp256 but the key inside is 'ssh-ed25519'",
        ),
        ("ssh-dss AAAAB3NzaC1kc3M=", "key type 'ssh-dss' is not one of"),
    ],
)
def test_host_keys_are_parsed_not_pattern_matched(key, says):
    with pytest.raises(SpecError) as info:
        parse_spec(_spec_with_byo_key(key))
    assert str(info.value).startswith(f"site 'bob': ssh.host_key: {says}")


def test_the_committed_stacks_pin_well_formed_keys():
    for stack in ("sim", "cloud"):
        config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
        for site in config.get("fedstack:sites", []):
            if "ssh" in site:
                assert check_host_key(site["ssh"]["host_key"]) == site["ssh"]["host_key"]
        for hv in config.get("fedstack:hypervisors", []):
            if "host_key" in hv:
                check_host_key(hv["host_key"])


# ------------------------------------------------------------------ 6. an IPv6 CIDR


def test_an_ipv6_cidr_is_refused_in_one_line():
    with pytest.raises(SpecError) as info:
        load_settings(settings_with(sshAllowedCidr="2001:db8::/64"))
    line = str(info.value)
    assert line.startswith("config fedstack:sshAllowedCidr: '2001:db8::/64' is IPv6")
    assert "public IPv4" in line and "\n" not in line


# ------------------------------------------------------------ 7. no SPICE display

#: the devices the provider writes into every domain (its newDomainDef and setConsoles)
PROVIDER_DOMAIN = """<domain type="kvm"><name>fedstack-sim-alice</name><devices>
<graphics type="spice" autoport="yes"><listen type="none"/></graphics>
<video><model type="qxl"/></video>
<channel type="spicevmc"><target type="virtio" name="com.redhat.spice.0"/></channel>
<channel type="unix"><target type="virtio" name="org.qemu.guest_agent.0"/></channel>
<console type="pty"><target type="serial" port="0"/></console>
<rng model="virtio"><backend model="random">/dev/urandom</backend></rng>
</devices></domain>"""


@pytest.mark.skipif(shutil.which("xsltproc") is None, reason="needs xsltproc (make sysdeps)")
def test_domains_have_no_display_only_the_serial_console(monkeypatch, tmp_path):
    cfg, secret_keys = stack_config("sim")
    h = setup("sim", cfg, secret_keys)
    run_main(h, monkeypatch)
    for site in ("alice", "bob", "carol"):
        dom = h.mocks.named(f"{site}-vm")
        assert dom.inputs["xml"] == {"xslt": NO_GRAPHICS_XSLT}
        assert dom.inputs["consoles"] == [
            {"type": "pty", "targetPort": "0", "targetType": "serial"}
        ]
    xsl, xml = tmp_path / "t.xsl", tmp_path / "d.xml"
    xsl.write_text(NO_GRAPHICS_XSLT)
    xml.write_text(PROVIDER_DOMAIN)
    done = subprocess.run(["xsltproc", str(xsl), str(xml)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "<graphics" not in out and "<video" not in out and "spicevmc" not in out
    assert '<console type="pty">' in out and "org.qemu.guest_agent.0" in out and "<rng" in out


# ----------------------------------------------- 8. hypervisor URIs the provider can dial


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("qemu+ssh://me@hv1.example:2222/system?keyfile=/k", "must not give a port (:2222)"),
        ("qemu+ssh://me@hv1/system", "qemu+ssh URIs must give keyfile=/absolute/path"),
    ],
)
def test_hypervisor_uris_that_cannot_work_are_one_line(uri, says):
    raw = _spec_with_byo_key(RSA_KEY)
    raw["sites"] = raw["sites"][:1]
    raw["hypervisors"] = [{"name": "local", "uri": uri}]
    with pytest.raises(SpecError) as info:
        parse_spec(raw)
    assert str(info.value).startswith(f"hypervisor 'local': uri: {says}")
    assert "\n" not in str(info.value)


def test_the_docs_no_longer_advise_an_ssh_config_alias():
    text = (ROOT / "docs/pulumi.md").read_text()
    assert "~/.ssh/config` alias instead" not in text
    assert "reads no `~/.ssh/config`" in text


# ------------------------------------------------ 10. every key read is declared


def test_every_config_key_the_program_reads_is_declared(monkeypatch, tmp_path):
    """The program reads its plain keys through `fedinfra.settings.CONFIG_KEYS` (everything
    else under fedstack: is refused) and its secrets through pulumi.Config: both must be in
    Pulumi.yaml, typed."""
    read: set[str] = set()
    original = pulumi.Config._get

    def spy(self: pulumi.Config, key: str, *args: Any, **kwargs: Any) -> Any:
        read.add(self.full_key(key))
        return original(self, key, *args, **kwargs)

    monkeypatch.setattr(pulumi.Config, "_get", spy)
    cloud(monkeypatch, tmp_path)
    cfg, secret_keys = stack_config("sim")
    run_main(setup("sim", cfg, secret_keys), monkeypatch)
    assert {"fedstack:fcPasswords", "fedstack:pipIndexUrl"} <= read
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    keys = {k.removeprefix(f"{PROJECT}:") for k in read} | set(CONFIG_KEYS)
    for key in sorted(keys):
        assert key in declared, key
        assert declared[key]["type"] in ("string", "integer", "boolean", "array", "object"), key
    assert "can only type scalars" not in (ROOT / "Pulumi.yaml").read_text()


# --------------------------------- 11. outbound access first; host private keys in no output


def test_instances_and_their_provisioning_wait_for_the_egress_rule(monkeypatch, tmp_path):
    h = cloud(monkeypatch, tmp_path)
    egress = h.urn_of("aws-env-all-out")
    for site in ("hospital-a", "hospital-b"):
        assert egress in h.request(f"{site}-vm").dependencies, site
        for step in ("ready", "provision"):
            assert egress in h.request(f"{site}-host-{step}").dependencies, (site, step)


def test_no_host_private_key_in_any_output(monkeypatch, tmp_path):
    """The host keys go into user-data only (secret); the inventory and the public view, the
    stack's two outputs, carry none of them."""
    for stack in ("sim", "cloud"):
        if stack == "cloud":
            h = cloud(monkeypatch, tmp_path)
        else:
            cfg, secret_keys = stack_config("sim")
            h = setup("sim", cfg, secret_keys)
            h.exports = run_main(h, monkeypatch)
        private_keys = [v[0] for k, v in h.mocks.keys.items() if k.endswith("-host-key")]
        assert len(private_keys) >= 2
        exported = json.dumps([resolve(v)[0] for v in h.exports.values()])
        assert set(h.exports) == {"inventory", "sites"}
        for key in private_keys:
            # the first body line is the same for every OpenSSH ed25519 key: take the material
            body = key.strip().splitlines()[2]
            assert body not in exported and json.dumps(key)[1:-1] not in exported, stack
