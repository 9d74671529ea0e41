//! A small, scripted ACS, sans-IO: given each body a CPE POSTs, it answers like a real ACS would
//! (InformResponse echoing the ID, then the RPCs of its script, then 204).
//!
//! The default script behaves like GenieACS's default provisions after a `0 BOOTSTRAP`: discover
//! the tree (GetParameterNames of `""` then of the root), read it in GetParameterValues batches of
//! 32, then set the Connection Request credentials and the periodic inform settings. Extra RPCs
//! can be pushed in every session. The demo run and the tests drive it in-process; the network
//! issue puts it behind an HTTP server.

pub mod inspect;
pub mod server;

use std::collections::VecDeque;

use crate::cwmp::envelope::URNS;
use crate::cwmp::parse::ParseError;
use crate::cwmp::xml::escape_to_string;

pub use inspect::{inspect, CpeMessage};

/// An RPC the ACS can push.
#[derive(Debug, Clone, PartialEq)]
pub enum AcsRpc {
    GetParameterNames {
        path: String,
        next_level: bool,
    },
    GetParameterValues {
        names: Vec<String>,
    },
    /// (name, xsd type, value)
    SetParameterValues {
        params: Vec<(String, String, String)>,
        parameter_key: String,
    },
    GetParameterAttributes {
        names: Vec<String>,
    },
    SetParameterAttributes {
        name: String,
        notification: u8,
    },
    AddObject {
        object: String,
        parameter_key: String,
    },
    DeleteObject {
        object: String,
        parameter_key: String,
    },
    Reboot {
        command_key: String,
    },
    FactoryReset,
    ScheduleInform {
        delay_seconds: u32,
        command_key: String,
    },
    Download {
        command_key: String,
        url: String,
        file_type: String,
    },
    GetRpcMethods,
    /// Any method body, sent verbatim inside `<soap-env:Body>`.
    Raw {
        method: String,
        body: String,
    },
}

impl AcsRpc {
    pub fn method(&self) -> &str {
        match self {
            AcsRpc::GetParameterNames { .. } => "GetParameterNames",
            AcsRpc::GetParameterValues { .. } => "GetParameterValues",
            AcsRpc::SetParameterValues { .. } => "SetParameterValues",
            AcsRpc::GetParameterAttributes { .. } => "GetParameterAttributes",
            AcsRpc::SetParameterAttributes { .. } => "SetParameterAttributes",
            AcsRpc::AddObject { .. } => "AddObject",
            AcsRpc::DeleteObject { .. } => "DeleteObject",
            AcsRpc::Reboot { .. } => "Reboot",
            AcsRpc::FactoryReset => "FactoryReset",
            AcsRpc::ScheduleInform { .. } => "ScheduleInform",
            AcsRpc::Download { .. } => "Download",
            AcsRpc::GetRpcMethods => "GetRPCMethods",
            AcsRpc::Raw { method, .. } => method,
        }
    }

    /// Parses a command-line spec such as `GPV Device.DeviceInfo.` or `Reboot key-1`.
    ///
    /// Forms: `GPN <path> [next]`, `GPV <name>…`, `SPV <name>=<value>[:<type>]…`, `GPA <name>…`,
    /// `SPA <name> <0|1|2>`, `AddObject <table.>`, `DeleteObject <instance.>`, `Reboot [key]`,
    /// `FactoryReset`, `ScheduleInform <seconds> [key]`, `Download <url> [key]`, `GetRPCMethods`.
    ///
    /// # Errors
    /// A message saying what is wrong and the accepted forms.
    pub fn from_spec(spec: &str) -> Result<AcsRpc, String> {
        let mut words = spec.split_whitespace();
        let verb = words.next().ok_or("empty RPC spec")?;
        let rest: Vec<String> = words.map(str::to_string).collect();
        let need = |n: usize| if rest.len() >= n { Ok(()) } else { Err(format!("`{spec}`: {verb} needs {n} argument(s)")) };
        let key = |i: usize| rest.get(i).cloned().unwrap_or_else(|| "cpe-sim".into());
        Ok(match verb.to_ascii_lowercase().as_str() {
            "gpn" | "getparameternames" => {
                need(1)?;
                AcsRpc::GetParameterNames { path: rest[0].clone(), next_level: rest.get(1).is_some_and(|w| w == "next" || w == "true" || w == "1") }
            }
            "gpv" | "getparametervalues" => {
                need(1)?;
                AcsRpc::GetParameterValues { names: rest }
            }
            "gpa" | "getparameterattributes" => {
                need(1)?;
                AcsRpc::GetParameterAttributes { names: rest }
            }
            "spv" | "setparametervalues" => {
                need(1)?;
                let mut params = Vec::new();
                for kv in &rest {
                    let (name, value) = kv.split_once('=').ok_or_else(|| format!("`{kv}`: SPV entries are name=value[:type]"))?;
                    let (value, ty) = match value.rsplit_once(':') {
                        Some((v, t)) if crate::model::ParamType::from_name(t).is_some() => (v, format!("xsd:{t}")),
                        _ => (value, "xsd:string".to_string()),
                    };
                    params.push((name.to_string(), ty, value.to_string()));
                }
                AcsRpc::SetParameterValues { params, parameter_key: "cpe-sim".into() }
            }
            "spa" | "setparameterattributes" => {
                need(2)?;
                let notification = rest[1].parse().map_err(|_| format!("`{spec}`: notification is 0, 1 or 2"))?;
                AcsRpc::SetParameterAttributes { name: rest[0].clone(), notification }
            }
            "addobject" => {
                need(1)?;
                AcsRpc::AddObject { object: rest[0].clone(), parameter_key: key(1) }
            }
            "deleteobject" => {
                need(1)?;
                AcsRpc::DeleteObject { object: rest[0].clone(), parameter_key: key(1) }
            }
            "reboot" => AcsRpc::Reboot { command_key: key(0) },
            "factoryreset" => AcsRpc::FactoryReset,
            "scheduleinform" => {
                need(1)?;
                let delay_seconds = rest[0].parse().map_err(|_| format!("`{spec}`: DelaySeconds is a whole number"))?;
                AcsRpc::ScheduleInform { delay_seconds, command_key: key(1) }
            }
            "download" => {
                need(1)?;
                AcsRpc::Download { url: rest[0].clone(), command_key: key(1), file_type: "1 Firmware Upgrade Image".into() }
            }
            "getrpcmethods" => AcsRpc::GetRpcMethods,
            _ => {
                return Err(format!(
                    "`{spec}`: unknown RPC; use GPN, GPV, SPV, GPA, SPA, AddObject, DeleteObject, Reboot, FactoryReset, ScheduleInform, Download or GetRPCMethods"
                ))
            }
        })
    }

    fn body(&self) -> String {
        let e = escape_to_string;
        let strings = |names: &[String]| {
            let items: String = names.iter().map(|n| format!("<string>{}</string>", e(n))).collect();
            format!("<ParameterNames soap-enc:arrayType=\"xsd:string[{}]\">{items}</ParameterNames>", names.len())
        };
        let inner = match self {
            AcsRpc::GetParameterNames { path, next_level } => {
                format!("<ParameterPath>{}</ParameterPath><NextLevel>{}</NextLevel>", e(path), *next_level as u8)
            }
            AcsRpc::GetParameterValues { names } | AcsRpc::GetParameterAttributes { names } => strings(names),
            AcsRpc::SetParameterValues { params, parameter_key } => {
                let items: String = params
                    .iter()
                    .map(|(n, t, v)| format!("<ParameterValueStruct><Name>{}</Name><Value xsi:type=\"{t}\">{}</Value></ParameterValueStruct>", e(n), e(v)))
                    .collect();
                format!("<ParameterList soap-enc:arrayType=\"cwmp:ParameterValueStruct[{}]\">{items}</ParameterList><ParameterKey>{}</ParameterKey>", params.len(), e(parameter_key))
            }
            AcsRpc::SetParameterAttributes { name, notification } => format!(
                "<ParameterList soap-enc:arrayType=\"cwmp:SetParameterAttributesStruct[1]\"><SetParameterAttributesStruct><Name>{}</Name><NotificationChange>1</NotificationChange><Notification>{notification}</Notification><AccessListChange>0</AccessListChange><AccessList soap-enc:arrayType=\"xsd:string[0]\"></AccessList></SetParameterAttributesStruct></ParameterList>",
                e(name)
            ),
            AcsRpc::AddObject { object, parameter_key } | AcsRpc::DeleteObject { object, parameter_key } => {
                format!("<ObjectName>{}</ObjectName><ParameterKey>{}</ParameterKey>", e(object), e(parameter_key))
            }
            AcsRpc::Reboot { command_key } => format!("<CommandKey>{}</CommandKey>", e(command_key)),
            AcsRpc::FactoryReset | AcsRpc::GetRpcMethods => String::new(),
            AcsRpc::ScheduleInform { delay_seconds, command_key } => {
                format!("<DelaySeconds>{delay_seconds}</DelaySeconds><CommandKey>{}</CommandKey>", e(command_key))
            }
            AcsRpc::Download { command_key, url, file_type } => format!(
                "<CommandKey>{}</CommandKey><FileType>{}</FileType><URL>{}</URL><Username></Username><Password></Password><FileSize>0</FileSize><TargetFileName></TargetFileName><DelaySeconds>0</DelaySeconds><SuccessURL></SuccessURL><FailureURL></FailureURL>",
                e(command_key), e(file_type), e(url)
            ),
            AcsRpc::Raw { body, .. } => return body.clone(),
        };
        format!("<cwmp:{m}>{inner}</cwmp:{m}>", m = self.method())
    }
}

/// What the ACS does in each session.
#[derive(Debug, Clone)]
pub struct AcsScript {
    /// Run the GenieACS-like discovery and provisioning after `0 BOOTSTRAP`.
    pub bootstrap_provisioning: bool,
    /// RPCs pushed in sessions whose Inform carries `0 BOOTSTRAP`, after the provisioning.
    pub on_bootstrap: Vec<AcsRpc>,
    /// RPCs pushed in every session, after any provisioning (or only in a CPE's first session
    /// the ACS sees, with `push_once`).
    pub every_session: Vec<AcsRpc>,
    /// Push `every_session` once per CPE (by serial number), not in every session: a pushed
    /// Reboot then ends instead of rebooting the CPE forever. The serials pushed to, shared by
    /// every session of the server.
    pub push_once: Option<PushedTo>,
    /// Names per GetParameterValues batch (GenieACS: 32).
    pub gpv_batch: usize,
    /// cwmp namespace the ACS answers in.
    pub urn: &'static str,
}

impl Default for AcsScript {
    fn default() -> AcsScript {
        AcsScript {
            bootstrap_provisioning: true,
            on_bootstrap: Vec::new(),
            every_session: Vec::new(),
            push_once: None,
            gpv_batch: 32,
            urn: URNS[0],
        }
    }
}

/// The serial numbers an ACS with `push_once` has pushed to (one entry per CPE it saw).
#[derive(Debug, Clone, Default)]
pub struct PushedTo(std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>);

impl PushedTo {
    /// Records `serial`; true the first time it is seen (a CPE without a serial is always new).
    pub fn first_time(&self, serial: Option<&str>) -> bool {
        let Some(s) = serial else { return true };
        self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(s.to_string())
    }
}

/// What the ACS answers one POST with.
#[derive(Debug, Clone, PartialEq)]
pub enum AcsOutput {
    /// `200 OK` with this envelope.
    Envelope(Vec<u8>),
    /// `204 No Content`: the session is over.
    NoContent,
}

/// Why the ACS refused a POST (a real ACS would answer 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcsError {
    /// The first message of a session was not an Inform.
    NotInformFirst,
    /// The body is not a CWMP envelope.
    Parse(ParseError),
}

/// One exchange the ACS saw, for reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    /// What the ACS sent (method) or `-` for 204.
    pub sent: String,
    /// What came back (method), with its fault code if any.
    pub answer: String,
    pub fault: Option<u32>,
    pub items: usize,
}

/// The ACS side of one session.
#[derive(Debug)]
pub struct AcsSession {
    script: AcsScript,
    informed: bool,
    queue: VecDeque<AcsRpc>,
    awaiting: Option<AcsRpc>,
    next_id: u32,
    /// The serial the Inform carried.
    pub serial: Option<String>,
    /// Events the Inform carried.
    pub events: Vec<String>,
    /// Every exchange, in order.
    pub log: Vec<Exchange>,
    /// Values the CPE reported (name → value), merged over the session.
    pub values: Vec<(String, String)>,
}

impl AcsSession {
    pub fn new(script: AcsScript) -> AcsSession {
        AcsSession {
            script,
            informed: false,
            queue: VecDeque::new(),
            awaiting: None,
            next_id: 1,
            serial: None,
            events: Vec::new(),
            log: Vec::new(),
            values: Vec::new(),
        }
    }

    /// Handles one POST body (empty for the CPE's empty POST).
    ///
    /// # Errors
    /// [`AcsError`] when the CPE broke the protocol.
    pub fn handle(&mut self, body: &[u8]) -> Result<AcsOutput, AcsError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            if !self.informed {
                return Err(AcsError::NotInformFirst);
            }
            return Ok(self.next_request());
        }
        let msg = inspect(body).map_err(AcsError::Parse)?;
        if !self.informed {
            if msg.method != "Inform" {
                return Err(AcsError::NotInformFirst);
            }
            self.informed = true;
            self.serial = msg.serial.as_deref().map(str::to_string);
            self.events = msg.events.iter().map(|e| e.to_string()).collect();
            let bootstrap = self.events.iter().any(|e| e == "0 BOOTSTRAP");
            if self.script.bootstrap_provisioning && bootstrap {
                self.queue.push_back(AcsRpc::GetParameterNames { path: String::new(), next_level: true });
            }
            if bootstrap {
                self.queue.extend(self.script.on_bootstrap.iter().cloned());
            }
            let push = match &self.script.push_once {
                Some(pushed) if !self.script.every_session.is_empty() => pushed.first_time(self.serial.as_deref()),
                _ => true,
            };
            if push {
                self.queue.extend(self.script.every_session.iter().cloned());
            }
            self.log.push(Exchange { sent: "InformResponse".into(), answer: "Inform".into(), fault: None, items: msg.params.len() });
            let body = "<cwmp:InformResponse><MaxEnvelopes>1</MaxEnvelopes></cwmp:InformResponse>";
            return Ok(AcsOutput::Envelope(self.envelope(msg.id.as_deref(), body)));
        }
        match msg.method {
            "TransferComplete" | "GetRPCMethods" => {
                // TransferComplete reports its outcome in FaultStruct/FaultCode (0 = success).
                self.log.push(Exchange {
                    sent: format!("{}Response", msg.method),
                    answer: msg.method.into(),
                    fault: msg.fault_code,
                    items: 0,
                });
                let body = if msg.method == "TransferComplete" {
                    "<cwmp:TransferCompleteResponse></cwmp:TransferCompleteResponse>".to_string()
                } else {
                    "<cwmp:GetRPCMethodsResponse><MethodList soap-enc:arrayType=\"xsd:string[3]\"><string>Inform</string><string>GetRPCMethods</string><string>TransferComplete</string></MethodList></cwmp:GetRPCMethodsResponse>".to_string()
                };
                Ok(AcsOutput::Envelope(self.envelope(msg.id.as_deref(), &body)))
            }
            _ => {
                let sent = self.awaiting.take();
                let sent_name = sent.as_ref().map_or("?".to_string(), |r| r.method().to_string());
                self.log.push(Exchange { sent: sent_name, answer: msg.method.into(), fault: msg.fault_code, items: msg.params.len() });
                for (n, v) in &msg.params {
                    if let Some(v) = v {
                        self.values.push((n.to_string(), v.to_string()));
                    }
                }
                if msg.fault_code.is_none() {
                    self.follow_up(sent.as_ref(), &msg);
                }
                Ok(self.next_request())
            }
        }
    }

    /// GenieACS-like discovery: root → whole tree → values in batches → provisioning SPV.
    fn follow_up(&mut self, sent: Option<&AcsRpc>, msg: &CpeMessage<'_>) {
        let Some(AcsRpc::GetParameterNames { path, next_level }) = sent else { return };
        if path.is_empty() && *next_level {
            if let Some((root, _)) = msg.params.first() {
                self.queue.push_front(AcsRpc::GetParameterNames { path: root.to_string(), next_level: false });
            }
            return;
        }
        let names: Vec<String> = msg.params.iter().map(|(n, _)| n.to_string()).filter(|n| !n.ends_with('.')).collect();
        let mut batches: Vec<AcsRpc> =
            names.chunks(self.script.gpv_batch.max(1)).map(|c| AcsRpc::GetParameterValues { names: c.to_vec() }).collect();
        let root = path.split('.').next().unwrap_or("Device");
        let ms = format!("{root}.ManagementServer.");
        let has = |leaf: &str| names.iter().any(|n| *n == format!("{ms}{leaf}"));
        let mut params = Vec::new();
        if has("ConnectionRequestUsername") && has("ConnectionRequestPassword") {
            let user = self.serial.clone().unwrap_or_else(|| "cpe".into());
            params.push((format!("{ms}ConnectionRequestUsername"), "xsd:string".into(), user.clone()));
            params.push((format!("{ms}ConnectionRequestPassword"), "xsd:string".into(), format!("pw-{user}")));
        }
        if has("PeriodicInformEnable") && has("PeriodicInformInterval") {
            params.push((format!("{ms}PeriodicInformEnable"), "xsd:boolean".into(), "true".into()));
            params.push((format!("{ms}PeriodicInformInterval"), "xsd:unsignedInt".into(), "300".into()));
        }
        if !params.is_empty() {
            batches.push(AcsRpc::SetParameterValues { params, parameter_key: "bootstrap".into() });
        }
        for rpc in batches.into_iter().rev() {
            self.queue.push_front(rpc);
        }
    }

    fn next_request(&mut self) -> AcsOutput {
        match self.queue.pop_front() {
            None => AcsOutput::NoContent,
            Some(rpc) => {
                let id = format!("acs-{}", self.next_id);
                self.next_id += 1;
                let body = rpc.body();
                self.awaiting = Some(rpc);
                AcsOutput::Envelope(self.envelope(Some(&id), &body))
            }
        }
    }

    fn envelope(&self, id: Option<&str>, body: &str) -> Vec<u8> {
        let header = id
            .map(|id| {
                format!("<soap-env:Header><cwmp:ID soap-env:mustUnderstand=\"1\">{}</cwmp:ID></soap-env:Header>", escape_to_string(id))
            })
            .unwrap_or_default();
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soap-env:Envelope xmlns:soap-enc=\"http://schemas.xmlsoap.org/soap/encoding/\" xmlns:soap-env=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:cwmp=\"{}\">{header}<soap-env:Body>{body}</soap-env:Body></soap-env:Envelope>",
            self.script.urn
        )
        .into_bytes()
    }
}
