// SPDX-License-Identifier: GPL-2.0

//! KUnit suite `devsec_tdisp_report`: the interface report, its encoding and decoding, and
//! the check against the BARs (`tdisp/report.rs`).

use kernel::prelude::*;

#[kunit_tests(devsec_tdisp_report)]
mod tests {
    use crate::suites::common::*;
    use crate::tdisp::*;

    // ---- Interface report -----------------------------------------------------------------

    #[test]
    fn report_round_trips() {
        let report = report_with(
            &[
                MmioRange {
                    first_page: 0x12_3456_789a,
                    number_of_pages: 16,
                    attributes: range_attr::MSIX_TABLE,
                    range_id: 0,
                },
                range(0x400, 1, 4),
            ],
            b"devsec",
        );
        let enc = Encoded::of(&report);
        assert_eq!(enc.len, encoded_len(&report));
        assert_eq!(enc.len, 16 + 2 * 16 + 4 + 6);
        assert_eq!(InterfaceReport::decode(enc.bytes()), Ok(report));
    }

    #[test]
    fn report_wire_layout() {
        let mut report = report_with(&[range(0x0102_0304, 5, 2)], &[0xaa]);
        report.msi_x_message_control = 0x8001;
        report.lnr_control = 0x0203;
        report.tph_control = 0x0405_0607;
        let enc = Encoded::of(&report);
        let expected: [u8; 37] = [
            0x02, 0, 0, 0, 0x01, 0x80, 0x03, 0x02, 0x07, 0x06, 0x05, 0x04, // fixed part
            1, 0, 0, 0, // mmio_range_count
            0x04, 0x03, 0x02, 0x01, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 2, 0, // range
            1, 0, 0, 0, 0xaa, // device specific
        ];
        assert_eq!(enc.bytes(), &expected[..]);
    }

    #[test]
    fn report_of_maximum_size_round_trips() {
        let mut report = InterfaceReport::new();
        for id in 0..MAX_RANGES as u16 {
            assert!(report
                .push_range(range(u64::from(id) << 20, u32::MAX, id))
                .is_ok());
        }
        assert_eq!(
            report.push_range(range(0, 1, 9)),
            Err(ReportError::TooManyRanges)
        );
        assert!(report
            .set_device_specific(&[0x5a; MAX_DEVICE_SPECIFIC])
            .is_ok());
        let enc = Encoded::of(&report);
        assert_eq!(enc.len, MAX_REPORT_LEN);
        assert_eq!(InterfaceReport::decode(enc.bytes()), Ok(report));
    }

    #[test]
    fn report_of_zero_ranges_round_trips() {
        let report = InterfaceReport::new();
        let enc = Encoded::of(&report);
        assert_eq!(enc.len, 20);
        assert_eq!(InterfaceReport::decode(enc.bytes()), Ok(report));
    }

    #[test]
    fn report_encode_fails_on_short_buffer() {
        let report = good_report(0);
        let mut buf = [0u8; 20];
        assert_eq!(report.encode(&mut buf), Err(ReportError::BufferTooSmall));
    }

    #[test]
    fn report_device_specific_is_bounded() {
        let mut report = InterfaceReport::new();
        assert_eq!(
            report.set_device_specific(&[0; MAX_DEVICE_SPECIFIC + 1]),
            Err(ReportError::DeviceSpecificTooLong)
        );
        assert!(report.device_specific().is_empty());
    }

    #[test]
    fn report_decode_rejects_truncated_fixed_part() {
        let enc = Encoded::of(&InterfaceReport::new());
        for len in 0..REPORT_FIXED_LEN {
            let bytes = enc.buf.get(..len).unwrap_or(&[]);
            assert_eq!(InterfaceReport::decode(bytes), Err(ReportError::Truncated));
        }
        // Missing device_specific_len.
        let bytes = enc.buf.get(..REPORT_FIXED_LEN).unwrap_or(&[]);
        assert_eq!(InterfaceReport::decode(bytes), Err(ReportError::Truncated));
    }

    #[test]
    fn report_decode_rejects_count_beyond_bytes() {
        let mut enc = Encoded::of(&good_report(0));
        enc.set_u32(RANGE_COUNT, 3);
        assert_eq!(
            InterfaceReport::decode(enc.bytes()),
            Err(ReportError::RangesTruncated)
        );
        enc.set_u32(RANGE_COUNT, u32::MAX);
        assert_eq!(
            InterfaceReport::decode(enc.bytes()),
            Err(ReportError::RangesTruncated)
        );
    }

    #[test]
    fn report_decode_rejects_truncated_range() {
        let enc = Encoded::of(&good_report(0));
        let full_ranges = REPORT_FIXED_LEN + 2 * REPORT_RANGE_LEN;
        for len in REPORT_FIXED_LEN..full_ranges {
            let bytes = enc.buf.get(..len).unwrap_or(&[]);
            assert_eq!(
                InterfaceReport::decode(bytes),
                Err(ReportError::RangesTruncated)
            );
        }
    }

    #[test]
    fn report_decode_rejects_too_many_ranges() {
        let mut buf = [0u8; REPORT_FIXED_LEN + 9 * REPORT_RANGE_LEN + 4];
        if let Some(count) = buf.get_mut(RANGE_COUNT) {
            *count = 9;
        }
        assert_eq!(
            InterfaceReport::decode(&buf),
            Err(ReportError::TooManyRanges)
        );
    }

    #[test]
    fn report_decode_rejects_device_specific_length_mismatch() {
        let mut enc = Encoded::of(&report_with(&[range(1, 1, 0)], b"abcd"));
        let ds_len = REPORT_FIXED_LEN + REPORT_RANGE_LEN;
        for wrong in [0, 3, 5, u32::MAX] {
            enc.set_u32(ds_len, wrong);
            assert_eq!(
                InterfaceReport::decode(enc.bytes()),
                Err(ReportError::LengthMismatch)
            );
        }
        // Trailing byte after a consistent blob.
        enc.set_u32(ds_len, 4);
        enc.len += 1;
        assert_eq!(
            InterfaceReport::decode(enc.bytes()),
            Err(ReportError::LengthMismatch)
        );
    }

    #[test]
    fn report_decode_rejects_oversized_device_specific() {
        let mut buf = [0u8; 20 + MAX_DEVICE_SPECIFIC + 1];
        if let Some(len) = buf.get_mut(REPORT_FIXED_LEN) {
            *len = (MAX_DEVICE_SPECIFIC + 1) as u8;
        }
        assert_eq!(
            InterfaceReport::decode(&buf),
            Err(ReportError::DeviceSpecificTooLong)
        );
    }

    // ---- Report against BARs --------------------------------------------------------------

    #[test]
    fn check_accepts_matching_report() {
        assert_eq!(check_report_against_bars(&good_report(0), &BARS, 0), Ok(()));
    }

    #[test]
    fn check_accepts_matching_report_with_reporting_offset() {
        assert_eq!(
            check_report_against_bars(&good_report(OFFSET), &BARS, OFFSET),
            Ok(())
        );
        assert_eq!(
            check_report_against_bars(&good_report(OFFSET), &BARS, 0),
            Err(ReportCheckError::RangeOutsideBar { range_id: 0 })
        );
    }

    #[test]
    fn check_accepts_ranges_in_any_order() {
        let report = report_with(
            &[
                range(0xe010_0000 / 4096, 1, 2),
                range(0xe000_0000 / 4096, 4, 0),
            ],
            &[],
        );
        assert_eq!(check_report_against_bars(&report, &BARS, 0), Ok(()));
    }

    #[test]
    fn check_rejects_range_count_mismatch() {
        let report = report_with(&[range(0xe000_0000 / 4096, 4, 0)], &[]);
        assert_eq!(
            check_report_against_bars(&report, &BARS, 0),
            Err(ReportCheckError::RangeCountMismatch {
                reported: 1,
                expected: 2
            })
        );
        assert_eq!(
            check_report_against_bars(&good_report(0), &[], 0),
            Err(ReportCheckError::RangeCountMismatch {
                reported: 2,
                expected: 0
            })
        );
    }

    #[test]
    fn check_rejects_range_outside_bar() {
        let report = report_with(
            &[
                range(0xe000_1000 / 4096, 4, 0),
                range(0xe010_0000 / 4096, 1, 2),
            ],
            &[],
        );
        assert_eq!(
            check_report_against_bars(&report, &BARS, 0),
            Err(ReportCheckError::RangeOutsideBar { range_id: 0 })
        );
    }

    #[test]
    fn check_rejects_range_below_reporting_offset() {
        assert_eq!(
            check_report_against_bars(&good_report(0), &BARS, OFFSET),
            Err(ReportCheckError::RangeOutsideBar { range_id: 0 })
        );
    }

    #[test]
    fn check_rejects_first_page_overflow() {
        let report = report_with(&[range(u64::MAX, 4, 0), range(0xe0100, 1, 2)], &[]);
        assert_eq!(
            check_report_against_bars(&report, &BARS, 0),
            Err(ReportCheckError::RangeOutsideBar { range_id: 0 })
        );
    }

    #[test]
    fn check_rejects_unknown_bar() {
        let report = report_with(
            &[
                range(0xe000_0000 / 4096, 4, 0),
                range(0xe010_0000 / 4096, 1, 3),
            ],
            &[],
        );
        assert_eq!(
            check_report_against_bars(&report, &BARS, 0),
            Err(ReportCheckError::UnknownBar { range_id: 3 })
        );
    }

    #[test]
    fn check_rejects_size_mismatch() {
        let report = report_with(
            &[
                range(0xe000_0000 / 4096, 3, 0),
                range(0xe010_0000 / 4096, 1, 2),
            ],
            &[],
        );
        assert_eq!(
            check_report_against_bars(&report, &BARS, 0),
            Err(ReportCheckError::SizeMismatch { range_id: 0 })
        );
    }

    #[test]
    fn check_rejects_duplicate_range() {
        let report = report_with(
            &[
                range(0xe000_0000 / 4096, 4, 0),
                range(0xe000_0000 / 4096, 4, 0),
            ],
            &[],
        );
        assert_eq!(
            check_report_against_bars(&report, &BARS, 0),
            Err(ReportCheckError::DuplicateRange { range_id: 0 })
        );
    }

    #[test]
    fn check_rejects_reserved_attributes() {
        let mut report = good_report(0);
        let mut ranges = [MmioRange::default(); 2];
        for (dst, src) in ranges.iter_mut().zip(report.ranges()) {
            *dst = *src;
        }
        ranges[1].attributes = 0x10 | range_attr::MSIX_PBA;
        report = report_with(&ranges, &[]);
        assert_eq!(
            check_report_against_bars(&report, &BARS, 0),
            Err(ReportCheckError::BadAttributes {
                range_id: 2,
                attributes: 0x12
            })
        );
        ranges[1].attributes = range_attr::ALL;
        report = report_with(&ranges, &[]);
        assert_eq!(check_report_against_bars(&report, &BARS, 0), Ok(()));
    }

    #[test]
    fn check_rejects_too_many_bars() {
        let bars = [Bar::default(); MAX_RANGES + 1];
        assert_eq!(
            check_report_against_bars(&InterfaceReport::new(), &bars, 0),
            Err(ReportCheckError::TooManyBars)
        );
    }
}
