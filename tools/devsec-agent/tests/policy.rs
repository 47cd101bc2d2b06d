// SPDX-License-Identifier: GPL-2.0

//! Policy parsing and validation: good files parse into the expected rules, bad files fail
//! with an error that says what is wrong.

use devsec_agent::pci::Function;
use devsec_agent::policy::{Action, Policy, DEFAULT_MMIO_REPORTING_OFFSET};

fn parse(text: &str) -> Result<Policy, String> {
    Policy::parse(text, "test.toml")
}

/// Asserts that `text` is rejected with an error containing every one of `needles`.
fn rejected(text: &str, needles: &[&str]) {
    match parse(text) {
        Ok(p) => panic!("accepted bad policy {text:?}: {p:?}"),
        Err(e) => {
            for needle in needles {
                assert!(e.contains(needle), "error {e:?} lacks {needle:?}");
            }
            assert!(
                e.starts_with("test.toml: "),
                "error {e:?} does not name the file"
            );
        }
    }
}

fn ep(bdf: &str, device: u16) -> Function {
    Function {
        bdf: bdf.to_string(),
        vendor: 0x1b36,
        device,
        class: 0xff0000,
    }
}

#[test]
fn example_policy_parses() {
    let text = include_str!("../policy.example.toml");
    let policy = parse(text).unwrap();
    assert_eq!(policy.rules.len(), 2);
    let rule = &policy.rules[0];
    assert_eq!(rule.name, "devsec-ep");
    assert_eq!(rule.action, Action::Accept);
    assert_eq!(rule.vendor, [0x1b36]);
    assert_eq!(rule.device, [0x0d5c, 0x0d5d]);
    assert_eq!(rule.class, Some((0xff0000, 0xffffff)));
    assert_eq!(rule.tsm, ["devsec_tsm"]);
    assert_eq!(rule.tdisp_version, "1.0");
    assert_eq!(rule.interface_info_required, 0x1);
    assert_eq!(rule.interface_info_forbidden, 0x18);
    assert_eq!(rule.bars.as_ref().map(|b| b.len()), Some(1));
    assert_eq!(rule.private_ranges, Some(1));
    assert_eq!(rule.sizes.get(&0), Some(&16384));
    assert_eq!(rule.driver.as_deref(), Some("devsec_pci"));
    assert_eq!(rule.mmio_reporting_offset, DEFAULT_MMIO_REPORTING_OFFSET);
    assert_eq!(policy.rules[1].action, Action::Refuse);
}

#[test]
fn minimal_rule_gets_defaults() {
    let policy = parse("[[rule]]\nname = \"any\"\n").unwrap();
    let rule = &policy.rules[0];
    assert_eq!(rule.action, Action::Accept);
    assert!(rule.vendor.is_empty() && rule.device.is_empty() && rule.tsm.is_empty());
    assert_eq!(rule.tdisp_version, "1.0");
    assert_eq!(rule.bars, None);
    assert_eq!(rule.mmio_reporting_offset, 1 << 40);
    assert!(rule.matches(&ep("0000:00:01.0", 0x1234)));
}

#[test]
fn bits_by_number_and_offset_override() {
    let policy = parse(
        "mmio_reporting_offset = 0\n[[rule]]\nname = \"a\"\ninterface_info_required = [0, 1]\n\
         interface_info_forbidden = [\"PRS_ENABLED\", 15]\n\
         [[rule]]\nname = \"b\"\nmmio_reporting_offset = 0x2000\n",
    )
    .unwrap();
    assert_eq!(policy.rules[0].interface_info_required, 0x3);
    assert_eq!(policy.rules[0].interface_info_forbidden, 0x8010);
    assert_eq!(policy.rules[0].mmio_reporting_offset, 0);
    assert_eq!(policy.rules[1].mmio_reporting_offset, 0x2000);
}

#[test]
fn first_matching_rule_wins() {
    let policy = parse(
        "[[rule]]\nname = \"vf\"\ndevice = 0x0d5d\n\
         [[rule]]\nname = \"slot1\"\nbdf = \"10000:01:01.*\"\n\
         [[rule]]\nname = \"class\"\nclass = 0xff0000\nclass_mask = 0xff0000\naction = \"refuse\"\n\
         [[rule]]\nname = \"rest\"\n",
    )
    .unwrap();
    let name = |f: &Function| policy.find(f).map(|r| r.name.clone());
    assert_eq!(name(&ep("10000:01:01.1", 0x0d5d)).as_deref(), Some("vf"));
    assert_eq!(name(&ep("10000:01:01.0", 0x0d5c)).as_deref(), Some("slot1"));
    assert_eq!(name(&ep("10000:01:00.0", 0x0d5c)).as_deref(), Some("class"));
    let mut other = ep("10000:01:00.0", 0x0d5c);
    other.class = 0x020000;
    assert_eq!(name(&other).as_deref(), Some("rest"));
}

#[test]
fn match_fields_must_all_match() {
    let policy = parse(
        "[[rule]]\nname = \"ep\"\nvendor = 0x1b36\ndevice = 0x0d5c\nbdf = \"10000:*\"\nclass = 0xff0000\n",
    )
    .unwrap();
    assert!(policy.find(&ep("10000:01:00.0", 0x0d5c)).is_some());
    assert!(policy.find(&ep("0000:01:00.0", 0x0d5c)).is_none());
    assert!(policy.find(&ep("10000:01:00.0", 0x0d5d)).is_none());
    let mut f = ep("10000:01:00.0", 0x0d5c);
    f.vendor = 0x8086;
    assert!(policy.find(&f).is_none());
    f.vendor = 0x1b36;
    f.class = 0xff0001;
    assert!(policy.find(&f).is_none());
}

#[test]
fn syntax_error_reports_line_and_column() {
    rejected(
        "[[rule]]\nname = \"x\"\nvendor = = 1\n",
        &["line 3", "column"],
    );
}

#[test]
fn unknown_keys_are_errors() {
    rejected(
        "[[rule]]\nname = \"x\"\nvendr = 1\n",
        &["unknown field", "vendr"],
    );
    rejected(
        "defaults = \"refuse\"\n[[rule]]\nname = \"x\"\n",
        &["unknown field", "defaults"],
    );
}

#[test]
fn empty_policy_is_an_error() {
    rejected("", &["no rules"]);
    rejected("# nothing here\ndefault = \"refuse\"\n", &["no rules"]);
}

#[test]
fn missing_name_is_an_error() {
    rejected("[[rule]]\nvendor = 1\n", &["name"]);
    rejected("[[rule]]\nname = \"\"\n", &["name must be non-empty"]);
}

#[test]
fn bad_values_are_errors() {
    let rule = |body: &str| format!("[[rule]]\nname = \"r\"\n{body}\n");
    rejected(
        "default = \"allow\"\n[[rule]]\nname = \"r\"\n",
        &["only supported default"],
    );
    rejected(&rule("action = \"maybe\""), &["rule \"r\"", "action"]);
    rejected(
        &rule("vendor = 0x10000"),
        &["vendor 0x10000 is not a 16-bit ID"],
    );
    rejected(&rule("device = [1, 0x12345]"), &["device 0x12345"]);
    rejected(&rule("device = []"), &["device list is empty"]);
    rejected(&rule("vendor = -1"), &["negative"]);
    rejected(&rule("vendor = \"x\""), &["integer"]);
    rejected(&rule("class = 0x1000000"), &["24-bit"]);
    rejected(&rule("class_mask = 0xff"), &["class_mask without class"]);
    rejected(
        &rule("interface_info_required = [\"NOPE\"]"),
        &["unknown bit name \"NOPE\""],
    );
    rejected(&rule("interface_info_forbidden = [16]"), &["bit number 16"]);
    rejected(
        &rule(
            "interface_info_required = [0]\ninterface_info_forbidden = [\"NO_UPDATE_AFTER_LOCK\"]",
        ),
        &["both required and forbidden"],
    );
    rejected(&rule("bars = [6]"), &["BAR 6 is not in 0..=5"]);
    rejected(&rule("bars = [0, 0]"), &["listed twice"]);
    rejected(&rule("private_ranges = 7"), &["private_ranges"]);
    rejected(&rule("sizes = { x = 4096 }"), &["not a BAR number"]);
    rejected(&rule("sizes = { 0 = 1000 }"), &["multiple of 4096"]);
    rejected(
        &rule("bars = [2]\nsizes = { 0 = 4096 }"),
        &["BAR 0 is not in bars"],
    );
    rejected(&rule("tdisp_version = \"1\""), &["major.minor"]);
    rejected(&rule("tsm = [\"\"]"), &["tsm names"]);
    rejected(&rule("tsm = []"), &["tsm list is empty"]);
    rejected(&rule("driver = \"a/b\""), &["driver"]);
    rejected(&rule("bdf = \"\""), &["bdf"]);
    rejected(
        &rule("mmio_reporting_offset = 0x1001"),
        &["multiple of 4096"],
    );
    rejected(
        "mmio_reporting_offset = 1\n[[rule]]\nname = \"r\"\n",
        &["multiple of 4096"],
    );
    rejected(
        "[[rule]]\nname = \"r\"\n[[rule]]\nname = \"r\"\n",
        &["duplicate rule name"],
    );
}
