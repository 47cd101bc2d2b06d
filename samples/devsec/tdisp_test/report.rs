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

    const B0: u64 = 0xe000_0000 / 4096;
    const B2: u64 = 0xe010_0000 / 4096;

    fn check(report: &InterfaceReport, offset: u64) -> Result<CheckedReport, ReportCheckError> {
        check_report_against_bars(report, &BARS, offset, 0)
    }

    fn check_ranges(
        ranges: &[MmioRange],
        lock_flags: u16,
    ) -> Result<CheckedReport, ReportCheckError> {
        check_report_against_bars(&report_with(ranges, &[]), &BARS, 0, lock_flags)
    }

    fn privacy(checked: &CheckedReport) -> [Option<bool>; MAX_RANGES] {
        let mut out = [None; MAX_RANGES];
        for (dst, range) in out.iter_mut().zip(checked.ranges()) {
            *dst = Some(range.private);
        }
        out
    }

    #[test]
    fn check_accepts_matching_report() {
        let checked = check(&good_report(0), 0);
        assert!(checked.is_ok());
        let checked = checked.unwrap_or_default();
        assert_eq!(
            checked.ranges(),
            &[
                CheckedRange {
                    bar: 0,
                    start: 0xe000_0000,
                    len: 0x4000,
                    attributes: 0,
                    range_id: 0,
                    private: true,
                },
                CheckedRange {
                    bar: 2,
                    start: 0xe010_0000,
                    len: 0x1000,
                    attributes: 0,
                    range_id: 2,
                    private: true,
                },
            ]
        );
        assert_eq!(checked.private_ranges().count(), 2);
    }

    #[test]
    fn check_accepts_matching_report_with_reporting_offset() {
        let checked = check(&good_report(OFFSET), OFFSET);
        assert_eq!(
            checked.map(|c| c.ranges().first().map(|r| r.start)),
            Ok(Some(0xe000_0000))
        );
        assert_eq!(
            check(&good_report(OFFSET), 0),
            Err(ReportCheckError::OutsideBars { range_id: 0 })
        );
    }

    #[test]
    fn check_accepts_ranges_in_any_order() {
        let report = report_with(&[range(B2, 1, 2), range(B0, 4, 0)], &[]);
        assert_eq!(
            check(&report, 0).map(|c| c.ranges().first().map(|r| r.bar)),
            Ok(Some(2))
        );
    }

    #[test]
    fn check_accepts_several_ranges_in_one_bar_with_any_range_id() {
        let ranges = [
            range(B0, 1, 7),
            range(B0 + 1, 2, 7),
            range(B0 + 3, 1, 0x1234),
            range(B2, 1, 0),
        ];
        let checked = check_ranges(&ranges, 0);
        assert_eq!(checked.map(|c| c.ranges().len()), Ok(4));
        assert_eq!(
            checked.map(|c| c.ranges().iter().filter(|r| r.bar == 0).count()),
            Ok(3)
        );
    }

    #[test]
    fn check_accepts_range_inside_bar() {
        // Pages 1..3 of BAR0: the rest of the BAR is simply not TEE memory.
        let checked = check_ranges(&[range(B0 + 1, 2, 0), range(B2, 1, 2)], 0);
        assert_eq!(
            checked.map(|c| c.ranges().first().map(|r| (r.start, r.len))),
            Ok(Some((0xe000_1000, 0x2000)))
        );
    }

    #[test]
    fn check_accepts_four_ranges_first_non_tee() {
        let ranges = [
            range_with(B0, 1, 0, range_attr::NON_TEE),
            range(B0 + 1, 1, 1),
            range_with(B0 + 2, 1, 2, range_attr::MSIX_TABLE),
            range_with(B0 + 3, 1, 3, range_attr::MSIX_PBA),
            range(B2, 1, 4),
        ];
        let checked = check_ranges(&ranges, 0).unwrap_or_default();
        let shared = [
            Some(false),
            Some(true),
            Some(false),
            Some(false),
            Some(true),
        ];
        assert_eq!(privacy(&checked)[..5], shared);
        assert_eq!(checked.private_ranges().count(), 2);
    }

    #[test]
    fn check_non_tee_range_is_shared_even_with_lock_msix() {
        for flags in [0, lock_flags::LOCK_MSIX] {
            let ranges = [range_with(B0, 4, 0, range_attr::NON_TEE), range(B2, 1, 2)];
            let checked = check_ranges(&ranges, flags).unwrap_or_default();
            assert_eq!(privacy(&checked)[..2], [Some(false), Some(true)]);
        }
        let ranges = [
            range_with(B0, 4, 0, range_attr::NON_TEE | range_attr::MSIX_TABLE),
            range(B2, 1, 2),
        ];
        let checked = check_ranges(&ranges, lock_flags::LOCK_MSIX).unwrap_or_default();
        assert_eq!(privacy(&checked)[..2], [Some(false), Some(true)]);
    }

    #[test]
    fn check_msix_ranges_are_shared_unless_lock_msix() {
        for attr in [range_attr::MSIX_TABLE, range_attr::MSIX_PBA] {
            let ranges = [
                range(B0, 3, 0),
                range_with(B0 + 3, 1, 1, attr),
                range(B2, 1, 2),
            ];
            let checked = check_ranges(&ranges, 0).unwrap_or_default();
            assert_eq!(
                privacy(&checked)[..3],
                [Some(true), Some(false), Some(true)]
            );
            let checked = check_ranges(&ranges, lock_flags::LOCK_MSIX).unwrap_or_default();
            assert_eq!(privacy(&checked)[..3], [Some(true), Some(true), Some(true)]);
            // Other lock flags do not make MSI-X private.
            let flags = lock_flags::NO_FW_UPDATE | lock_flags::SYSTEM_CACHE_LINE_SIZE;
            let checked = check_ranges(&ranges, flags).unwrap_or_default();
            assert_eq!(privacy(&checked)[1], Some(false));
        }
    }

    #[test]
    fn check_rejects_updatable_range() {
        let ranges = [range(B0, 4, 0), range_with(B2, 1, 2, range_attr::UPDATABLE)];
        assert_eq!(
            check_ranges(&ranges, 0),
            Err(ReportCheckError::Updatable { range_id: 2 })
        );
        let ranges = [
            range_with(B0, 4, 0, range_attr::UPDATABLE | range_attr::NON_TEE),
            range(B2, 1, 2),
        ];
        assert_eq!(
            check_ranges(&ranges, 0),
            Err(ReportCheckError::Updatable { range_id: 0 })
        );
    }

    #[test]
    fn check_rejects_reserved_attributes() {
        let ranges = [
            range(B0, 4, 0),
            range_with(B2, 1, 2, 0x10 | range_attr::MSIX_PBA),
        ];
        assert_eq!(
            check_ranges(&ranges, 0),
            Err(ReportCheckError::BadAttributes {
                range_id: 2,
                attributes: 0x12
            })
        );
        let ranges = [range(B0, 4, 0), range_with(B2, 1, 2, 0x8000)];
        assert!(matches!(
            check_ranges(&ranges, 0),
            Err(ReportCheckError::BadAttributes { .. })
        ));
    }

    #[test]
    fn check_rejects_reserved_interface_info() {
        for bit in [0x20u16, 0x40, 0x8000] {
            let mut report = good_report(0);
            report.interface_info |= bit;
            assert_eq!(
                check(&report, 0),
                Err(ReportCheckError::ReservedInterfaceInfo(bit))
            );
        }
        let mut report = good_report(0);
        report.interface_info = interface_info::ALL;
        assert!(check(&report, 0).is_ok());
    }

    #[test]
    fn check_rejects_bar_not_reported() {
        assert_eq!(
            check_ranges(&[range(B0, 4, 0)], 0),
            Err(ReportCheckError::BarNotReported { bar: 2 })
        );
        assert_eq!(
            check(&InterfaceReport::new(), 0),
            Err(ReportCheckError::BarNotReported { bar: 0 })
        );
        // No BARs, no ranges: nothing to describe.
        assert_eq!(
            check_report_against_bars(&InterfaceReport::new(), &[], 0, 0).map(|c| c.ranges().len()),
            Ok(0)
        );
    }

    #[test]
    fn check_rejects_range_outside_bars() {
        // Starts one page late, so its last page is past the end of BAR0.
        let report = report_with(&[range(B0 + 1, 4, 0), range(B2, 1, 2)], &[]);
        assert_eq!(
            check(&report, 0),
            Err(ReportCheckError::OutsideBars { range_id: 0 })
        );
        // Starts before BAR0.
        let report = report_with(&[range(B0 - 1, 2, 0), range(B2, 1, 2)], &[]);
        assert_eq!(
            check(&report, 0),
            Err(ReportCheckError::OutsideBars { range_id: 0 })
        );
        // A range of a BAR the function does not have.
        assert_eq!(
            check_report_against_bars(&good_report(0), &[], 0, 0),
            Err(ReportCheckError::OutsideBars { range_id: 0 })
        );
    }

    #[test]
    fn check_rejects_range_below_reporting_offset() {
        assert_eq!(
            check(&good_report(0), OFFSET),
            Err(ReportCheckError::OutsideBars { range_id: 0 })
        );
    }

    #[test]
    fn check_rejects_first_page_overflow() {
        let report = report_with(&[range(u64::MAX, 4, 0), range(B2, 1, 2)], &[]);
        assert_eq!(
            check(&report, 0),
            Err(ReportCheckError::OutsideBars { range_id: 0 })
        );
    }

    #[test]
    fn check_rejects_range_end_overflow() {
        let last_page = u64::MAX / 4096;
        let report = report_with(&[range(last_page, 4, 0), range(B2, 1, 2)], &[]);
        assert_eq!(
            check(&report, 0),
            Err(ReportCheckError::OutsideBars { range_id: 0 })
        );
    }

    #[test]
    fn check_rejects_misaligned_range_after_offset() {
        assert_eq!(
            check(&good_report(0x800), 0x800),
            Err(ReportCheckError::Misaligned { range_id: 0 })
        );
    }

    #[test]
    fn check_rejects_empty_range() {
        let report = report_with(&[range(B0, 4, 0), range(B2, 0, 2), range(B2, 1, 3)], &[]);
        assert_eq!(
            check(&report, 0),
            Err(ReportCheckError::EmptyRange { range_id: 2 })
        );
    }

    #[test]
    fn check_rejects_overlapping_ranges() {
        let report = report_with(
            &[range(B0, 2, 0), range(B0 + 1, 2, 1), range(B2, 1, 2)],
            &[],
        );
        assert_eq!(
            check(&report, 0),
            Err(ReportCheckError::Overlap { range_id: 1 })
        );
        let report = report_with(&[range(B0, 4, 0), range(B0, 4, 9), range(B2, 1, 2)], &[]);
        assert_eq!(
            check(&report, 0),
            Err(ReportCheckError::Overlap { range_id: 9 })
        );
        // Adjacent is not overlapping.
        let report = report_with(
            &[range(B0 + 2, 2, 0), range(B0, 2, 1), range(B2, 1, 2)],
            &[],
        );
        assert!(check(&report, 0).is_ok());
    }

    #[test]
    fn check_rejects_range_in_two_bars() {
        let bars = [
            BARS[0],
            Bar {
                index: 1,
                start: 0xe000_0000,
                len: 0x2000,
            },
        ];
        let report = report_with(&[range(B0, 1, 0)], &[]);
        assert_eq!(
            check_report_against_bars(&report, &bars, 0, 0),
            Err(ReportCheckError::AmbiguousBar { range_id: 0 })
        );
    }

    #[test]
    fn check_rejects_too_many_bars() {
        let bars = [Bar::default(); MAX_RANGES + 1];
        assert_eq!(
            check_report_against_bars(&InterfaceReport::new(), &bars, 0, 0),
            Err(ReportCheckError::TooManyBars)
        );
    }
}
