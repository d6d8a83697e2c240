"""`GET /sd`: http_sd JSON of the configured targets, through the real app on loopback."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from exporter.app import Exporter
from exporter.config import load_config
from exporter.web.handlers import make_app
from exporter.web.sd import sd_groups

CONFIG = """
defaults: {owner: platform}
profiles:
  internal: {revocation: none}
targets:
  - {address: shop.example.net, name: Shop, owner: web-team, labels: {env: prod, site: fra1}}
  - {address: 'mx1.example.net:25', protocol: smtp, server_name: mail.example.net}
  - {address: '[2001:db8::5]:636', protocol: ldaps, profile: internal}
files:
  - {path: /etc/ssl/certs/none.pem}
"""


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yml"
    path.write_text(CONFIG)
    return path


def test_one_group_per_target_with_probe_parameters_and_labels(tmp_path: Path) -> None:
    assert sd_groups(load_config(_config(tmp_path))) == [
        {
            "targets": ["shop.example.net"],
            "labels": {
                "__param_target": "shop.example.net",
                "__param_protocol": "https",
                "__param_server_name": "shop.example.net",
                "owner": "web-team",
                "name": "Shop",
                "env": "prod",
                "site": "fra1",
            },
        },
        {
            "targets": ["mx1.example.net:25"],
            "labels": {
                "__param_target": "mx1.example.net:25",
                "__param_protocol": "smtp",
                "__param_server_name": "mail.example.net",
                "owner": "platform",
                "name": "mx1.example.net:25",
            },
        },
        {
            "targets": ["[2001:db8::5]:636"],
            "labels": {
                "__param_target": "[2001:db8::5]:636",
                "__param_protocol": "ldaps",
                "__param_server_name": "2001:db8::5",
                "owner": "platform",
                "name": "[2001:db8::5]:636",
                "__param_profile": "internal",  # only when it is not the default profile
            },
        },
    ]


async def test_sd_route_serves_the_running_configuration(tmp_path: Path) -> None:
    exporter = Exporter(str(_config(tmp_path)), listen="127.0.0.1:0")
    exporter.apply(*exporter.load())  # the configuration without the scheduler: nothing is probed
    client = TestClient(TestServer(make_app(exporter), host="127.0.0.1"))
    await client.start_server()
    try:
        resp = await client.get("/sd")
        assert resp.status == 200 and resp.content_type == "application/json"
        body = await resp.json()
        assert [g["targets"] for g in body] == [["shop.example.net"], ["mx1.example.net:25"], ["[2001:db8::5]:636"]]
        # A reload that drops targets is seen at once.
        (tmp_path / "config.yml").write_text("targets: [{address: 'mx1.example.net:25', protocol: smtp}]\n")
        assert (await exporter.reload())[0]
        body = await (await client.get("/sd")).json()
        assert [g["labels"]["__param_server_name"] for g in body] == ["mx1.example.net"]
    finally:
        await client.close()
        await exporter.shutdown()


async def test_empty_configuration_gives_an_empty_list(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yml"
    empty.write_text("")
    assert sd_groups(load_config(empty)) == []
