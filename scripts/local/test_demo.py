"""The demo's closing step (s): the daemonctl commands it prints for the stack it ran on, with this
run's endpoint, environment and deployment ids, and its summary of revisions per host. No stack,
no Rust build.

    .venv/bin/python -m unittest discover -s scripts/local -p 'test_*.py'
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import unittest
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))
import demo  # noqa: E402

demo._COLOR = False  # plain lines, whatever the terminal


def printed(d: demo.Demo) -> list[str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        d.print_commands()
    return [ln.strip() for ln in out.getvalue().splitlines()]


def a_demo(keep: bool = False) -> demo.Demo:
    d = demo.Demo(argparse.Namespace(pace=0.0, keep=keep))
    d.stack = SimpleNamespace(api_url="http://127.0.0.1:4100", moto_url="http://127.0.0.1:4200")  # type: ignore[assignment]
    return d


class Commands(unittest.TestCase):
    def test_the_whole_story(self) -> None:
        d = a_demo(keep=True)
        d.tds = {n: f"arn:aws:ecs:us-east-1:123456789012:task-definition/{demo.ENV}:{n}" for n in range(1, 6)}
        d.canary_id, d.gated_id = "01CANARY", "01GATED"
        lines = printed(d)
        cmds = [ln.split("   #")[0].strip() for ln in lines]
        self.assertIn("export DAEMONCTL_ENDPOINT=http://127.0.0.1:4100", cmds)
        self.assertIn("export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1", cmds)
        for want in ("daemonctl env list", f"daemonctl env status {demo.ENV} --hosts",
                     f"daemonctl deployments list {demo.ENV}", f"daemonctl deployments hosts {demo.ENV} 01CANARY",
                     f"daemonctl deployments get {demo.ENV} 01GATED", f"daemonctl deploy {demo.ENV} --canary 1 --wait",
                     f"daemonctl deployments promote {demo.ENV} <that id>"):
            self.assertIn(want, cmds)
        alarm = next(c for c in cmds if "set_alarm_state" in c)
        self.assertIn("endpoint_url='http://127.0.0.1:4200'", alarm)
        self.assertIn(f"AlarmName='{demo.GATE_ALARM}'", alarm)
        self.assertFalse(any("--keep" in ln for ln in lines), "with --keep the commands are live")

    def test_placement_only(self) -> None:
        lines = printed(a_demo())
        self.assertTrue(any("rerun with --keep" in ln for ln in lines))
        self.assertIn(f"daemonctl env status {demo.ROUTER} --hosts", [ln.split("   #")[0].strip() for ln in lines])
        self.assertFalse(any("promote" in ln or "set_alarm_state" in ln for ln in lines))

    def test_no_gateway_no_commands(self) -> None:
        d = a_demo()
        d.stack = SimpleNamespace(api_url=None, moto_url="x")  # type: ignore[assignment]
        self.assertEqual(printed(d), [])


class Revisions(unittest.TestCase):
    def test_label(self) -> None:
        d = a_demo()
        d.tds = {2: "td:2", 4: "td:4"}
        self.assertEqual(d.rev_label({"td:4": 1, "td:2": 4}), "4 on revision 2, 1 on revision 4")
        self.assertEqual(d.rev_label({"?": 1}), "1 on ?")


if __name__ == "__main__":
    unittest.main()
