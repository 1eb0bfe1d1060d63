//! Random and mutated bytes never panic the parser or the de-identifier; de-identifying twice
//! changes nothing more under limited-data-set structure; a file larger than a message streams.

use phiguard_hl7::{Hl7Deid, parse_segments};
use phiguard_rules::{Config, ProfileName, Tally};
use proptest::prelude::*;

use crate::engine;

const SEED: &[u8] = b"MSH|^~\\&|A|B|C|D|20200101||ORU^R01|1|P|2.5\rPID|1||M1^^^H~M2||DOE&X^JANE||19800214|F|||1 Main^^Town^ST^12345\rOBX|1|TX|c^d||Seen by Dr. Ann Lee \\.br\\ \\X0D\\ \\T\\||||||F\rZPI|1|x^y&z~w\r";

fn deid(input: &[u8]) {
    let config = Config::builtin(ProfileName::Shifted);
    let d = Hl7Deid::new(&config).unwrap();
    let mut out = Vec::new();
    if d.deidentify(engine(1, &config), input, &mut out, &mut Tally::default())
        .is_ok()
    {
        parse_segments(out.as_slice()).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = parse_segments(bytes.as_slice());
        deid(&bytes);
        let mut prefixed = b"MSH|^~\\&|".to_vec();
        prefixed.extend_from_slice(&bytes);
        deid(&prefixed);
    }

    #[test]
    fn mutated_messages_never_panic(edits in proptest::collection::vec((0usize..SEED.len(), any::<u8>()), 1..8)) {
        let mut m = SEED.to_vec();
        for (i, b) in edits {
            m[i] = b;
        }
        let _ = parse_segments(m.as_slice());
        deid(&m);
    }
}

#[test]
fn a_long_file_streams_message_by_message() {
    // 20,000 messages through a reader that hands out small pieces: the writer sees output long
    // before the end of the input.
    struct Repeat {
        left: usize,
        pos: usize,
    }
    impl std::io::Read for Repeat {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.left == 0 {
                return Ok(0);
            }
            let n = buf.len().min(SEED.len() - self.pos).min(97);
            buf[..n].copy_from_slice(&SEED[self.pos..self.pos + n]);
            self.pos += n;
            if self.pos == SEED.len() {
                self.pos = 0;
                self.left -= 1;
            }
            Ok(n)
        }
    }
    struct Count {
        bytes: usize,
    }
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.bytes += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let config = Config::builtin(ProfileName::SafeHarbor);
    let d = Hl7Deid::new(&config).unwrap();
    let mut tally = Tally::default();
    let mut sink = Count { bytes: 0 };
    d.deidentify(
        engine(1, &config),
        Repeat {
            left: 20_000,
            pos: 0,
        },
        &mut sink,
        &mut tally,
    )
    .unwrap();
    assert_eq!(tally.records, 20_000);
    assert!(sink.bytes > 20_000 * 100);
}
