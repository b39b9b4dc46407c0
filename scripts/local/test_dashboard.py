"""The template's dashboard as the local stack renders it (.local/dashboard.json): every
CloudFormation reference resolved to the local stack's names, the body valid JSON, the console URL
the template's DashboardUrl output gives.

    .venv/bin/python -m unittest discover -s scripts/local -p 'test_*.py'
"""

from __future__ import annotations

import json
import re
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cfn  # noqa: E402
import stack as stackmod  # noqa: E402

TABLE = "daemon-scheduler"


def rows(body: dict, namespace: str) -> list[list]:
    return [row for w in body["widgets"] if w["type"] == "metric" for row in w["properties"]["metrics"]
            if row and row[0] == namespace]


class LocalDashboard(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.template = cfn.load_template()
        cls.values = stackmod.dashboard_values(cls.template, TABLE)
        cls.name, cls.body = cfn.dashboard(cls.template, cls.values)

    def test_every_reference_is_resolved(self) -> None:
        text = json.dumps(self.body)
        # What is left of ${...} are CloudWatch's own dynamic labels (the template's ${!PROP(...)}).
        left = set(re.findall(r"\$\{[^}]*\}", text))
        self.assertEqual(left, {"${PROP('Dim.Environment')}"})
        self.assertEqual(self.name, f"{TABLE}-{stackmod.REGION}")
        regions = {w["properties"]["region"] for w in self.body["widgets"] if w["type"] == "metric"}
        self.assertEqual(regions, {stackmod.REGION})

    def test_functions_and_queues_have_their_local_names(self) -> None:
        functions = {row[3] for row in rows(self.body, "AWS/Lambda")}
        self.assertEqual(functions, set(cfn.FUNCTIONS))
        queues = {row[3] for row in rows(self.body, "AWS/SQS")}
        # as Stack.create_queues names them in moto
        self.assertTrue(queues, "dead-letter queues drawn")
        self.assertTrue(queues <= {f"{TABLE}-{lid}" for lid in cfn.queues(self.template)}, queues)
        alarms = next(w for w in self.body["widgets"] if w["type"] == "alarm")["properties"]["alarms"]
        self.assertTrue(all(a.startswith(f"arn:aws:cloudwatch:{stackmod.REGION}:") for a in alarms), alarms)

    def test_console_url_is_the_templates_output(self) -> None:
        self.assertEqual(
            cfn.dashboard_url(self.template, self.values),
            f"https://console.aws.amazon.com/cloudwatch/home?region={stackmod.REGION}"
            f"#dashboards/dashboard/{TABLE}-{stackmod.REGION}")

    def test_an_unknown_reference_is_an_error(self) -> None:
        values = dict(self.values)
        del values["ReconcilerFunction"]
        with self.assertRaises(KeyError):
            cfn.dashboard(self.template, values)
        self.assertEqual(cfn.sub("${!PROP('x')} ${A.B}", {"A.B": "c"}), "${PROP('x')} c")


if __name__ == "__main__":
    unittest.main()
