//! CloudWatch adapter of the `Alarms` port: DescribeAlarms by name, 100 names a call (the API's
//! limit; moto enforces none), every page, metric and composite alarms alike. It encodes and
//! decodes only: what a state means for a deployment is the domain's (`domain::alarm_gate`).

use async_trait::async_trait;
use aws_sdk_cloudwatch::types::AlarmType;
use aws_sdk_cloudwatch::Client;

use crate::adapters::dynamo::sdk_error;
use crate::domain::AlarmState;
use crate::error::Result;
use crate::limits::DESCRIBE_ALARMS_NAMES;
use crate::ports::Alarms;

#[derive(Clone)]
pub struct CloudWatchAlarms {
    client: Client,
}

impl CloudWatchAlarms {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl Alarms for CloudWatchAlarms {
    async fn states(&self, names: &[String]) -> Result<Vec<(String, AlarmState)>> {
        let mut out = Vec::new();
        for chunk in names.chunks(DESCRIBE_ALARMS_NAMES) {
            let mut token: Option<String> = None;
            loop {
                let page = self
                    .client
                    .describe_alarms()
                    .set_alarm_names(Some(chunk.to_vec()))
                    // Without AlarmTypes CloudWatch returns metric alarms only.
                    .alarm_types(AlarmType::MetricAlarm)
                    .alarm_types(AlarmType::CompositeAlarm)
                    .max_records(DESCRIBE_ALARMS_NAMES as i32)
                    .set_next_token(token.take())
                    .send()
                    .await
                    .map_err(|e| sdk_error("CloudWatch", e))?;
                let state = |s: Option<&aws_sdk_cloudwatch::types::StateValue>| {
                    AlarmState::parse(s.map_or("", |s| s.as_str()))
                };
                for a in page.metric_alarms() {
                    if let Some(name) = a.alarm_name() {
                        out.push((name.to_owned(), state(a.state_value())));
                    }
                }
                for a in page.composite_alarms() {
                    if let Some(name) = a.alarm_name() {
                        out.push((name.to_owned(), state(a.state_value())));
                    }
                }
                token = page.next_token().map(str::to_owned);
                if token.is_none() {
                    break;
                }
            }
        }
        Ok(out)
    }
}
