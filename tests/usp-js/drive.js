// A USP Controller no one here wrote: usp-js (npm, iopsys) over MQTT 3.1.1 (mqtt.js) drives one
// cpe-sim Agent through mosquitto. Run by tests/usp_wire.rs:
//   USP_PORT=1883 USP_AGENT=os::FEFEFE-FEFEFE000000 USP_CONTROLLER=self::usp-js node drive.js
// Prints one JSON object with what each message returned; exits 1 on the first unexpected answer.
"use strict";
const connect = require("usp-js").default;

const port = Number(process.env.USP_PORT);
const agent = process.env.USP_AGENT;
const controller = process.env.USP_CONTROLLER;
const out = { notifications: [], objectCreations: [], completions: [] };

const within = (ms, p, what) =>
  Promise.race([p, new Promise((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms))]);

// Resolves with the first item of `list` that `pick` accepts (polled; bounded by the caller).
const arrived = (list, pick) =>
  new Promise((resolve) => {
    const look = () => {
      const n = list.find(pick);
      if (n) resolve(n);
      else setTimeout(look, 20);
    };
    look();
  });
const notified = (pick) => arrived(out.notifications, pick);

async function main() {
  const usp = await within(
    20000,
    connect({
      host: "127.0.0.1",
      port,
      protocol: "mqtt",
      toId: agent,
      fromId: controller,
      // TR-369 MQTT binding as cpe-sim's Agents use it: the Agent's topic and the Controller's.
      publishEndpoint: `usp/agent/${agent}`,
      subscribeEndpoint: `usp/controller/${controller}`,
      reconnectPeriod: 0,
    }),
    "connect"
  );
  // The Agent's factory-default Boot! subscription has ID "cpe-sim-boot" (NotifRetry on): usp-js
  // routes its Notifies here and answers them.
  usp.on("cpe-sim-boot", (message, raw) => {
    const msgId = raw && raw.header && raw.header.msgId;
    out.notifications.push({ msgId, message });
    if (msgId) usp._notifyResp("cpe-sim-boot", msgId).catch(() => {});
  });
  const t = (what, p) => within(15000, p, what);
  out.serial = await t("get", usp.get("Device.DeviceInfo.SerialNumber"));
  out.deviceInfo = await t("get partial", usp.get("Device.DeviceInfo.", { max_depth: 1 }));
  out.set = await t("set", usp.set("Device.WiFi.SSID.1.SSID", "from-usp-js"));
  out.ssid = await t("get after set", usp.get("Device.WiFi.SSID.1.SSID"));
  // usp-js's own subscribe recipe: an Add on Device.LocalAgent.Subscription. (NotifRetry on),
  // then every ObjectCreation for that subscription's ID comes to this callback (answered).
  out.subscribed = await t(
    "subscribe",
    usp.subscribe({ id: "oc", notif: "ObjectCreation", reference: "Device.NAT.PortMapping." }, (message) => out.objectCreations.push(message))
  );
  out.subscribed = typeof out.subscribed;
  out.added = await t("add", usp.add("Device.NAT.PortMapping.", { ExternalPort: "8081", Alias: "js" }));
  out.objectCreation = await t("ObjectCreation", arrived(out.objectCreations, () => true));
  const added = Array.isArray(out.added) ? out.added[0] : out.added;
  out.addedPort = await t("get added", usp.get(`${added}ExternalPort`));
  out.instances = await t("instances", usp.instances("Device.NAT.PortMapping."));
  out.deleted = await t("del", usp.del(added));
  // An asynchronous command's result comes through an OperationComplete subscription.
  await t(
    "subscribe OperationComplete",
    usp.subscribe({ id: "op", notif: "OperationComplete", reference: "Device.SelfTestDiagnostics()" }, (message) =>
      out.completions.push({ message })
    )
  );
  usp._operate("Device.SelfTestDiagnostics()", "js-1", true).catch(() => {});
  out.operationComplete = await t("OperationComplete", arrived(out.completions, (n) => n.message && n.message.Status === "Complete"));
  out.proto = await t("supportedProto", usp.supportedProto("1.3"));
  out.supportedDM = await t("supportedDM", usp.supportedDM("Device.NAT.", { firstLevelOnly: false, returnParams: true }));
  try {
    await t("bad get", usp.get("Device.Nope."));
    out.badPath = "accepted";
  } catch (e) {
    out.badPath = e;
  }
  try {
    await t("bad set", usp.set("Device.DeviceInfo.ModelName", "x"));
    out.readOnly = "accepted";
  } catch (e) {
    out.readOnly = e;
  }
  out.boot = await t("Boot!", notified((n) => n.message && n.message.eventName === "Boot!"));
  await usp.disconnect();
}

main()
  .then(() => {
    console.log(JSON.stringify(out));
    process.exit(0);
  })
  .catch((e) => {
    console.log(JSON.stringify(out));
    console.error("usp-js controller failed:", e && (e.stack || JSON.stringify(e)));
    process.exit(1);
  });
