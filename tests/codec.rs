//! The codec against the shared protocol examples, real-ACS quirks and hostile input.

use std::borrow::Cow;

use cpe_sim::cwmp::parse::ParseError;
use cpe_sim::cwmp::rpc::{parse_envelope, AcsMessage, AcsRequest};
use proptest::prelude::*;

use crate::support::{acs_envelope, fixture};

fn request(body: &[u8]) -> AcsRequest<'_> {
    match parse_envelope(body).unwrap().message {
        AcsMessage::Request(r) => r,
        other => panic!("not a request: {other:?}"),
    }
}

#[test]
fn shared_examples_parse() {
    let ir = fixture("inform-response.xml");
    let env = parse_envelope(&ir).unwrap();
    assert_eq!(env.id.as_deref(), Some("1001"));
    assert_eq!(env.cwmp_minor, Some(2));
    assert_eq!(env.message, AcsMessage::InformResponse { max_envelopes: 1 });

    let gpn = fixture("gpn-request-root.xml");
    let AcsRequest::GetParameterNames(r) = request(&gpn) else { panic!() };
    assert_eq!((r.path.as_ref(), r.next_level), ("", true));

    let gpv = fixture("gpv-request-partial.xml");
    let AcsRequest::GetParameterValues(r) = request(&gpv) else { panic!() };
    assert_eq!(r.names, vec!["Device.ManagementServer.", "Device.DeviceInfo.UpTime"]);

    let spv = fixture("spv-request.xml");
    let AcsRequest::SetParameterValues(r) = request(&spv) else { panic!() };
    assert_eq!(r.params.len(), 4);
    assert_eq!(r.parameter_key, "cfg-2025-01-15-a");
    assert_eq!(r.params[0].xsi_type, Some("boolean"));
    // `&amp;` is decoded, and only then is the value copied.
    assert_eq!(r.params[3].value, "cr-SIM0000001 & co");
    assert!(matches!(r.params[3].value, Cow::Owned(_)));
    assert!(matches!(r.params[0].value, Cow::Borrowed(_)), "plain text borrows from the body");

    let add = fixture("addobject-request.xml");
    let AcsRequest::AddObject(r) = request(&add) else { panic!() };
    assert_eq!(r.object_name, "Device.NAT.PortMapping.");
}

#[test]
fn any_prefix_default_namespaces_and_versions() {
    let body = br#"<?xml version="1.0"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" soapenv:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">
  <soapenv:Header><ID xmlns="urn:dslforum-org:cwmp-1-4" soapenv:mustUnderstand="true">FREEACS-1</ID></soapenv:Header>
  <soapenv:Body>
    <GetParameterNames xmlns="urn:dslforum-org:cwmp-1-4"><ParameterPath/><NextLevel>false</NextLevel></GetParameterNames>
  </soapenv:Body>
</soapenv:Envelope>"#;
    let env = parse_envelope(body).unwrap();
    assert_eq!(env.id.as_deref(), Some("FREEACS-1"));
    assert_eq!(env.cwmp_minor, Some(4));
    assert!(matches!(env.message, AcsMessage::Request(AcsRequest::GetParameterNames(ref r)) if r.path.is_empty() && !r.next_level));
    // A prefix named like the envelope prefix but bound elsewhere is not SOAP.
    let fake = br#"<soap:Envelope xmlns:soap="urn:not-soap"><soap:Body/></soap:Envelope>"#;
    assert_eq!(parse_envelope(fake), Err(ParseError::NotSoapEnvelope));
}

#[test]
fn hold_requests_empty_arrays_and_missing_header() {
    let body =
        acs_envelope("x", "<cwmp:GetParameterValues><ParameterNames soap-enc:arrayType=\"xsd:string[0]\"/></cwmp:GetParameterValues>");
    let with_hold = String::from_utf8(body)
        .unwrap()
        .replace("</cwmp:ID>", "</cwmp:ID><cwmp:HoldRequests soap-env:mustUnderstand=\"1\">1</cwmp:HoldRequests>");
    let env = parse_envelope(with_hold.as_bytes()).unwrap();
    assert!(env.hold_requests);
    assert!(matches!(env.message, AcsMessage::Request(AcsRequest::GetParameterValues(ref r)) if r.names.is_empty()));
    let no_header = br#"<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/" xmlns:c="urn:dslforum-org:cwmp-1-0"><e:Body><c:Reboot><CommandKey>k</CommandKey></c:Reboot></e:Body></e:Envelope>"#;
    let env = parse_envelope(no_header).unwrap();
    assert_eq!(env.id, None);
    assert!(matches!(env.message, AcsMessage::Request(AcsRequest::Reboot(ref r)) if r.command_key == "k"));
}

#[test]
fn set_attributes_with_empty_notification() {
    let body = acs_envelope("a", "<cwmp:SetParameterAttributes><ParameterList soap-enc:arrayType=\"cwmp:SetParameterAttributesStruct[2]\"><SetParameterAttributesStruct><Name>Device.DeviceInfo.</Name><NotificationChange>0</NotificationChange><Notification></Notification><AccessListChange>1</AccessListChange><AccessList soap-enc:arrayType=\"xsd:string[1]\"><string>Subscriber</string></AccessList></SetParameterAttributesStruct><SetParameterAttributesStruct><Name>Device.X</Name><NotificationChange>true</NotificationChange><Notification>2</Notification><AccessListChange>false</AccessListChange><AccessList/></SetParameterAttributesStruct></ParameterList></cwmp:SetParameterAttributes>");
    let AcsRequest::SetParameterAttributes(r) = request(&body) else { panic!() };
    assert_eq!(r.params[0].notification, None);
    assert_eq!(r.params[0].access_list.as_deref(), Some(&[Cow::Borrowed("Subscriber")][..]));
    assert_eq!(r.params[1].notification, Some(2));
    assert_eq!(r.params[1].access_list, None);
}

#[test]
fn acs_faults_including_genieacs_malformed_wrapper() {
    let genie = br#"<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/" xmlns:cwmp="urn:dslforum-org:cwmp-1-0"><soap-env:Header><cwmp:ID soap-env:mustUnderstand="1">9</cwmp:ID></soap-env:Header><soap-env:Body><soap-env:Body:Fault><faultcode>Client</faultcode><faultstring>CWMP fault</faultstring><detail><cwmp:Fault><FaultCode>8000</FaultCode><FaultString>Method not supported</FaultString></cwmp:Fault></detail></soap-env:Body:Fault></soap-env:Body></soap-env:Envelope>"#;
    let AcsMessage::Fault(f) = parse_envelope(genie).unwrap().message else { panic!() };
    assert_eq!(f.code.map(|c| c.0), Some(8000));
    assert_eq!(f.fault_string, "Method not supported");
}

#[test]
fn unknown_methods_and_bad_arguments_are_values() {
    let body = acs_envelope("u", "<cwmp:X_ACME_Frobnicate><Level>9</Level></cwmp:X_ACME_Frobnicate>");
    assert_eq!(request(&body), AcsRequest::Unknown { name: "X_ACME_Frobnicate" });
    let body = acs_envelope(
        "b",
        "<cwmp:GetParameterNames><ParameterPath>Device.</ParameterPath><NextLevel>maybe</NextLevel></cwmp:GetParameterNames>",
    );
    let env = parse_envelope(&body).unwrap();
    assert_eq!(env.message, AcsMessage::BadRequest { method: "GetParameterNames", error: ParseError::BadArgument("NextLevel") });
    assert_eq!(env.id.as_deref(), Some("b"));
    let body = acs_envelope("m", "<cwmp:SetParameterValues><ParameterKey>k</ParameterKey></cwmp:SetParameterValues>");
    assert!(matches!(
        parse_envelope(&body).unwrap().message,
        AcsMessage::BadRequest { error: ParseError::MissingArgument("ParameterList"), .. }
    ));
}

#[test]
fn hostile_bodies_get_clear_outcomes() {
    let good = fixture("spv-request.xml");
    assert_eq!(parse_envelope(&good[..good.len() - 40]), Err(ParseError::Truncated));
    assert_eq!(parse_envelope(b"not xml at all"), Err(ParseError::NotSoapEnvelope));
    assert_eq!(parse_envelope(b"<a><b></a>"), Err(ParseError::NotSoapEnvelope));
    assert_eq!(
        parse_envelope(b"<e:Envelope xmlns:e=\"http://schemas.xmlsoap.org/soap/envelope/\"><e:Body><b></c></e:Body></e:Envelope>"),
        Err(ParseError::Malformed)
    );
    assert_eq!(
        parse_envelope(b"<e:Envelope xmlns:e=\"http://schemas.xmlsoap.org/soap/envelope/\">\xff\xfe</e:Envelope>"),
        Err(ParseError::NotUtf8)
    );
    let deep = format!("{}{}", "<a>".repeat(100), "</a>".repeat(100));
    let body = acs_envelope("d", &format!("<cwmp:Reboot><CommandKey>{deep}</CommandKey></cwmp:Reboot>"));
    assert_eq!(parse_envelope(&body), Err(ParseError::TooDeep));
    let body = acs_envelope("e", "");
    assert_eq!(parse_envelope(&body), Err(ParseError::EmptyBody));
    let huge = "x".repeat(100_000);
    let body = acs_envelope("h", &format!("<cwmp:Reboot><CommandKey>{huge}</CommandKey></cwmp:Reboot>"));
    assert!(matches!(parse_envelope(&body).unwrap().message, AcsMessage::BadRequest { error: ParseError::TextTooLong, .. }));
    let many: String = (0..10_001).map(|_| "<string>Device.</string>").collect();
    let body = acs_envelope("t", &format!("<cwmp:GetParameterValues><ParameterNames>{many}</ParameterNames></cwmp:GetParameterValues>"));
    assert!(matches!(parse_envelope(&body).unwrap().message, AcsMessage::BadRequest { error: ParseError::TooManyItems(_), .. }));
    assert_eq!(parse_envelope(b"<x:Envelope xmlns:x=\"http://schemas.xmlsoap.org/soap/envelope/\"></x:Envelope>"), Err(ParseError::NoBody));
    assert_eq!(
        parse_envelope(b"<e:Envelope xmlns:e=\"http://schemas.xmlsoap.org/soap/envelope/\"><e:Body><x/></e:Body></e:Envelope><junk/>"),
        Err(ParseError::Malformed)
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Random bytes never panic the parser.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_envelope(&bytes);
    }

    /// Every truncation and single-byte corruption of real ACS messages gives a clear outcome.
    #[test]
    fn mutated_fixtures_never_panic(which in 0usize..6, cut in 0usize..2000, pos in 0usize..2000, byte in any::<u8>()) {
        let names = ["inform-response.xml", "gpn-request-root.xml", "gpv-request-partial.xml", "gpv-request-invalid.xml", "spv-request.xml", "addobject-request.xml"];
        let mut body = fixture(names[which]);
        let cut = cut.min(body.len());
        let _ = parse_envelope(&body[..cut]);
        let pos = pos % body.len();
        body[pos] = byte;
        let _ = parse_envelope(&body);
    }
}

// What precedes the envelope (issue 10 item 3): everything XML 1.0 allows before the root element
// is accepted; an encoding other than UTF-8 gets a clear outcome that names it.

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// An InformResponse envelope (no declaration), optionally with a non-ASCII text in its header.
fn envelope(extra_header: &str) -> String {
    format!("<soap-env:Envelope xmlns:soap-env=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:cwmp=\"urn:dslforum-org:cwmp-1-0\"><soap-env:Header><cwmp:ID soap-env:mustUnderstand=\"1\">p-1</cwmp:ID>{extra_header}</soap-env:Header><soap-env:Body><cwmp:InformResponse><MaxEnvelopes>1</MaxEnvelopes></cwmp:InformResponse></soap-env:Body></soap-env:Envelope>")
}

fn with_prolog(prolog: &[u8]) -> Vec<u8> {
    let mut body = prolog.to_vec();
    body.extend_from_slice(envelope("").as_bytes());
    body
}

/// The body parses as the InformResponse it is.
fn accepted(body: &[u8]) {
    let shown = String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned();
    let env = parse_envelope(body).unwrap_or_else(|e| panic!("{shown:?}: {e}"));
    assert_eq!((env.id.as_deref(), env.message), (Some("p-1"), AcsMessage::InformResponse { max_envelopes: 1 }), "{shown:?}");
}

/// The body is refused as a whole; returns what the refusal says.
fn refused(body: &[u8]) -> String {
    let e = parse_envelope(body).expect_err(&String::from_utf8_lossy(&body[..body.len().min(80)]));
    assert!(e.is_fatal(), "{e:?}");
    e.to_string()
}

#[test]
fn a_utf8_byte_order_mark_is_accepted() {
    accepted(&with_prolog(BOM));
    accepted(&with_prolog(b"\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
    accepted(&with_prolog(b"\xEF\xBB\xBF\r\n  "));
    // Only at the very start: U+FEFF anywhere else before the root is text, not a BOM.
    let mut late = b"  ".to_vec();
    late.extend_from_slice(BOM);
    assert_eq!(parse_envelope(&with_prolog(&late)), Err(ParseError::NotSoapEnvelope));
}

#[test]
fn declarations_in_every_utf8_spelling_and_quoting_are_accepted() {
    for decl in [
        r#"<?xml version="1.0" encoding="UTF-8"?>"#,
        r#"<?xml version="1.0" encoding="utf-8"?>"#,
        r#"<?xml version="1.0" encoding="Utf-8"?>"#,
        // Not a registered name, but what it means is certain, the bytes are checked as UTF-8
        // anyway, and libxml2 reads it as UTF-8 too.
        r#"<?xml version="1.0" encoding="utf8"?>"#,
        r#"<?xml version="1.0" encoding="UTF8"?>"#,
        r#"<?xml version='1.0' encoding='UTF-8'?>"#,
        r#"<?xml version="1.0" encoding='utf-8' standalone="yes"?>"#,
        r#"<?xml version='1.0' standalone='no'?>"#,
        r#"<?xml version="1.0"?>"#,
        r#"<?xml version="1.1" encoding="UTF-8"?>"#,
        "<?xml\tversion = \"1.0\"\r\n encoding\t=\t'UTF-8' ?>",
        // US-ASCII is a subset: a 7-bit body reads the same.
        r#"<?xml version="1.0" encoding="US-ASCII"?>"#,
    ] {
        accepted(&with_prolog(decl.as_bytes()));
        accepted(&with_prolog(format!("{decl}\r\n\t \n").as_bytes()));
    }
}

#[test]
fn whitespace_comments_and_processing_instructions_before_the_root_are_accepted() {
    for prolog in [
        "\r\n\t  \n",
        "<!-- generated by acs 3.2 -->",
        "<?xml version=\"1.0\"?>\n<!-- a comment with <Envelope> and -- inside? no: with < and > -->\n",
        "<?xml version=\"1.0\"?><!---->",
        "<?xml-stylesheet type=\"text/xsl\" href=\"cwmp.xsl\"?>",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<?acs-trace id=\"42\" t=\"a ? b > c\"?>\r\n<!-- é, 中文 -->\t",
        "<?pi?>",
    ] {
        accepted(&with_prolog(prolog.as_bytes()));
    }
}

#[test]
fn bom_declaration_comment_and_pi_together() {
    let mut body = BOM.to_vec();
    body.extend_from_slice(b"<?xml version='1.0' encoding='utf-8' standalone='yes'?>\r\n<!-- ACS -->\n<?trace 1?>\t\r\n");
    body.extend_from_slice(envelope("<x:Note xmlns:x=\"urn:x\">caf\u{e9}</x:Note>").as_bytes());
    body.extend_from_slice(b"\r\n<!-- end -->\n");
    accepted(&body);
}

#[test]
fn a_doctype_is_still_refused() {
    for prolog in [
        "<!DOCTYPE soap-env:Envelope>",
        "<?xml version=\"1.0\"?>\n<!DOCTYPE x [<!ENTITY a \"aaaa\">]>",
        "\u{feff}<!-- c --><!DOCTYPE x SYSTEM \"http://127.0.0.1:1/x.dtd\">",
    ] {
        let e = refused(&with_prolog(prolog.as_bytes()));
        assert!(e.contains("DOCTYPE"), "{prolog}: {e}");
    }
}

#[test]
fn a_declared_encoding_other_than_utf8_is_named() {
    for (decl, name) in [
        (r#"<?xml version="1.0" encoding="ISO-8859-1"?>"#, "ISO-8859-1"),
        (r#"<?xml version='1.0' encoding='iso-8859-15'?>"#, "iso-8859-15"),
        (r#"<?xml version="1.0" encoding="windows-1252" standalone="yes"?>"#, "windows-1252"),
        (r#"<?xml version="1.0" encoding="UTF-16"?>"#, "UTF-16"),
        (r#"<?xml version="1.0" encoding="Shift_JIS"?>"#, "Shift_JIS"),
    ] {
        let want = format!("the body declares encoding {name}; only UTF-8 is read");
        // Whether the text happens to be ASCII or not, it is refused by name, never misread.
        assert_eq!(refused(&with_prolog(decl.as_bytes())), want);
        let mut latin1 = decl.as_bytes().to_vec();
        latin1.extend_from_slice(envelope("<x:N xmlns:x=\"urn:x\">caf</x:N>").as_bytes());
        let at = latin1.windows(4).position(|w| w == b"caf<").unwrap() + 3;
        latin1.insert(at, 0xE9); // é in ISO-8859-1: not UTF-8
        assert_eq!(refused(&latin1), want);
        // After a BOM and whitespace too.
        let mut bom = BOM.to_vec();
        bom.extend_from_slice(b"\n");
        bom.extend_from_slice(decl.as_bytes());
        assert_eq!(refused(&with_prolog(&bom)), want);
    }
    // US-ASCII is refused when the body is not 7-bit (it would be misread).
    let mut body = br#"<?xml version="1.0" encoding="US-ASCII"?>"#.to_vec();
    body.extend_from_slice(envelope("<x:N xmlns:x=\"urn:x\">caf\u{e9}</x:N>").as_bytes());
    assert_eq!(refused(&body), "the body declares encoding US-ASCII; only UTF-8 is read");
    // Long names are shortened, never dropped.
    let long = format!("<?xml version=\"1.0\" encoding=\"{}\"?>", "X".repeat(200));
    assert!(refused(&with_prolog(long.as_bytes())).starts_with("the body declares encoding XXXXXXXX"));
    // A declaration that is not well-formed is malformed XML.
    assert_eq!(parse_envelope(&with_prolog(b"<?xml version=\"1.0\" encoding=UTF-8?>")), Err(ParseError::Malformed));
}

#[test]
fn a_byte_order_mark_or_layout_of_another_encoding_is_named() {
    let text = format!("<?xml version=\"1.0\" encoding=\"UTF-16\"?>{}", envelope(""));
    let le: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let be: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
    let cases: [(Vec<u8>, &str); 6] = [
        ([&b"\xFF\xFE"[..], &le].concat(), "UTF-16LE"),
        ([&b"\xFE\xFF"[..], &be].concat(), "UTF-16BE"),
        // No BOM: the layout of `<?` tells (XML 1.0 Appendix F).
        (le.clone(), "UTF-16LE"),
        (be.clone(), "UTF-16BE"),
        ([&b"\xFF\xFE\x00\x00"[..], b"<\0\0\0"].concat(), "UTF-32LE"),
        ([&b"\x00\x00\xFE\xFF"[..], b"\0\0\0<"].concat(), "UTF-32BE"),
    ];
    for (body, name) in cases {
        assert_eq!(refused(&body), format!("the body declares encoding {name}; only UTF-8 is read"));
    }
}

#[test]
fn a_session_fails_with_the_encoding_named() {
    use cpe_sim::session::Step;
    let mut cpe = crate::support::Cpe::new(crate::support::TR181, 0);
    cpe.inform();
    let body = with_prolog(br#"<?xml version="1.0" encoding="ISO-8859-1"?>"#);
    let Step::Finished(s) = cpe.reply(Some(&body)).0 else { panic!("the session ends") };
    let e = s.result.expect_err("it fails");
    assert_eq!(e.to_string(), "CWMP envelope round-trip failed: the body declares encoding ISO-8859-1; only UTF-8 is read");
    assert_eq!(cpe.state.retry_count, 1);
}
