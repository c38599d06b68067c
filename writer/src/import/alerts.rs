//! The predecessor's alert states (acknowledged, assignee, comment) as operator commands on
//! the alert instances open in sdash now, and its assignee list as `remember_assignee`
//! commands.

use std::collections::HashMap;

use sdash_proto::{AlertInstance, CommandKind, CommandRecord, FLEET_TARGET};

use super::{ACTOR, ALERT_KEY_CHARS, Mapped, Run, map, predecessor, sdash};

impl Run<'_> {
    pub(super) async fn alert_states(
        &mut self,
        systems: &[predecessor::System],
        skipped_systems: &HashMap<i64, String>,
        states: Vec<predecessor::AlertStateRow>,
    ) -> anyhow::Result<()> {
        const WHAT: &str = "alert states";
        // Every name of the predecessor, longest first (a name may begin with another's).
        let mut names: Vec<(String, i64)> = Vec::new();
        for s in systems {
            if let Some(n) = &s.name {
                names.push((n.clone(), s.id));
                if n.trim() != n {
                    names.push((n.trim().to_owned(), s.id));
                }
            }
        }
        names.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.1.cmp(&b.1)));
        let by_pred: HashMap<i64, Mapped> =
            self.mapped.iter().map(|m| (m.pred_id, m.clone())).collect();
        for st in states {
            self.out.count(WHAT).read += 1;
            let Some(key) = st.alert_key.clone().filter(|k| !k.is_empty()) else {
                self.out.skip(WHAT, "alert_states", st.id, "no alert_key");
                continue;
            };
            let acknowledged = st.acknowledged.unwrap_or(false);
            if !acknowledged && st.assignee.is_none() && st.comment.is_none() {
                self.out.skip(
                    WHAT,
                    "alert_states",
                    st.id,
                    "nothing to bring: not acknowledged, no assignee, no comment",
                );
                continue;
            }
            let Some((name, pred_id)) = names
                .iter()
                .find(|(n, _)| key.starts_with(&format!("{n}|")))
                .cloned()
            else {
                self.out.skip(
                    WHAT,
                    "alert_states",
                    st.id,
                    "orphan: its alert_key names no system of the predecessor",
                );
                continue;
            };
            let Some(m) = by_pred.get(&pred_id) else {
                let why = skipped_systems.get(&pred_id).cloned().unwrap_or_default();
                self.out.skip(
                    WHAT,
                    "alert_states",
                    st.id,
                    format!("system {pred_id} is not imported ({why})"),
                );
                continue;
            };
            // The alert: sdash's open instance whose key (cut like the predecessor's) is the
            // key, else the one whose alert id follows the name (its title differs).
            let rest = &key[name.len() + 1..];
            let open: Vec<&sdash::OpenAlert> = self
                .sdash
                .open_alerts
                .iter()
                .filter(|a| a.system_id == m.id)
                .collect();
            let cut = |a: &sdash::OpenAlert| -> String {
                format!("{name}|{}|{}", a.alert_id, a.title)
                    .chars()
                    .take(ALERT_KEY_CHARS)
                    .collect()
            };
            let found = open
                .iter()
                .find(|a| cut(a) == key)
                .or_else(|| {
                    open.iter()
                        .filter(|a| {
                            rest.starts_with(&format!("{}|", a.alert_id))
                                || (key.chars().count() >= ALERT_KEY_CHARS
                                    && a.alert_id.starts_with(rest))
                        })
                        .max_by_key(|a| a.alert_id.len())
                })
                .map(|a| (*a).clone());
            let Some(alert) = found else {
                self.out.skip(
                    WHAT,
                    "alert_states",
                    st.id,
                    "no open alert in sdash matches (the alert is gone, or sdash has not seen it \
                     open yet: import again after the collector's first polls)",
                );
                continue;
            };
            let at = st
                .updated_at
                .as_deref()
                .and_then(map::naive_utc_ms)
                .unwrap_or(self.now)
                .clamp(1, self.now);
            let instance = AlertInstance {
                alert_id: alert.alert_id.clone(),
                opened_at: alert.first_seen,
            };
            let mut commands: Vec<CommandRecord> = Vec::new();
            let command = |kind: CommandKind| CommandRecord {
                kind,
                actor: ACTOR.into(),
                alert: Some(instance.clone()),
                assignee: None,
                comment: None,
            };
            if acknowledged {
                commands.push(command(CommandKind::Acknowledge));
            }
            if let Some(a) = &st.assignee {
                if a.chars().count() <= sdash_proto::command::MAX_ASSIGNEE_CHARS {
                    commands.push(CommandRecord {
                        assignee: Some(a.clone()),
                        ..command(CommandKind::Assign)
                    });
                } else {
                    self.out.note(format!(
                        "alert_states id {}: the assignee is longer than {} characters; not assigned",
                        st.id,
                        sdash_proto::command::MAX_ASSIGNEE_CHARS
                    ));
                }
            }
            if let Some(c) = &st.comment {
                let chars: Vec<char> = c.chars().collect();
                for part in chars.chunks(sdash_proto::command::MAX_COMMENT_CHARS) {
                    commands.push(CommandRecord {
                        comment: Some(part.iter().collect()),
                        ..command(CommandKind::Comment)
                    });
                }
            }
            let mut new = 0;
            for (n, c) in commands.into_iter().enumerate() {
                let id = map::uuid5(&[
                    "alert-state",
                    &st.id.to_string(),
                    c.kind.as_str(),
                    &n.to_string(),
                    &m.id,
                    &instance.alert_id,
                    &instance.opened_at.to_string(),
                ]);
                if self.sdash.audited.contains(&id) {
                    continue;
                }
                new += 1;
                let subject = c.kind.subject(&m.id);
                let env = self.envelope(&m.id, id, at, c);
                self.publish(subject, &env).await?;
            }
            if new > 0 {
                self.out.count(WHAT).imported += 1;
            } else {
                self.out.count(WHAT).already += 1;
            }
        }
        Ok(())
    }

    pub(super) async fn assignees(
        &mut self,
        rows: Vec<predecessor::AssigneeRow>,
    ) -> anyhow::Result<()> {
        const WHAT: &str = "assignee names";
        for r in rows {
            self.out.count(WHAT).read += 1;
            let Some(name) = r.name.clone() else {
                self.out.skip(WHAT, "assignee_history", r.id, "no name");
                continue;
            };
            if name.chars().count() > sdash_proto::command::MAX_ASSIGNEE_CHARS {
                self.out.skip(
                    WHAT,
                    "assignee_history",
                    r.id,
                    format!(
                        "longer than {} characters",
                        sdash_proto::command::MAX_ASSIGNEE_CHARS
                    ),
                );
                continue;
            }
            let id = map::uuid5(&["assignee", &name]);
            if self.sdash.assignees.contains(&name) || self.sdash.audited.contains(&id) {
                self.out.count(WHAT).already += 1;
                continue;
            }
            self.out.count(WHAT).imported += 1;
            let at = r
                .used_at
                .as_deref()
                .and_then(map::naive_utc_ms)
                .unwrap_or(self.now);
            let body = CommandRecord {
                kind: CommandKind::RememberAssignee,
                actor: ACTOR.into(),
                alert: None,
                assignee: Some(name),
                comment: None,
            };
            let env = self.envelope(FLEET_TARGET, id, at, body);
            self.publish(CommandKind::RememberAssignee.subject(FLEET_TARGET), &env)
                .await?;
        }
        Ok(())
    }
}
