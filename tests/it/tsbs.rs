//! Every TSBS query of W1 (WORKLOAD.md) gives exactly the brute-force answer, on a small
//! scale: 8 hosts for one day, in two flushes plus rows still in the head.

use crate::common::{options, seed};
use crate::oracle::{Model, engine_row, evaluate, same_row};
use annals::workload::w1::{TsbsQuery, W1, W1Config};
use annals::{Batch, Engine};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[test]
fn every_tsbs_query_matches_the_brute_force_answer() {
    let config = W1Config::new(8, 1, seed());
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    let mut model = Model::default();
    let mut generator = W1::new(config.clone()).unwrap();
    let mut written = 0u64;
    loop {
        let mut batch = Batch::new();
        if generator.fill_batch(&mut batch, 2000).unwrap() == 0 {
            break;
        }
        let receipt = engine.write(&batch).unwrap();
        model.apply(&batch, receipt.first_seq);
        written += batch.len() as u64;
        if written == 24_000 || written == 48_000 {
            engine.flush().unwrap();
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed());
    for kind in TsbsQuery::ALL {
        for instance in 0..8 {
            let query = kind.generate(&config, &mut rng);
            let result = engine.snapshot().query(&query).unwrap();
            let (tags, values) = (result.tag_columns.clone(), result.value_columns.clone());
            let (rows, _) = result.collect_rows().unwrap();
            let got: Vec<_> = rows.iter().map(|r| engine_row((&tags, &values), r)).collect();
            let want: Vec<_> = evaluate(&model, &query)
                .into_iter()
                .take(query.limit.unwrap_or(usize::MAX))
                .collect();
            assert!(
                !want.is_empty() || kind == TsbsQuery::HighCpu1,
                "{} instance {instance} selects nothing",
                kind.name()
            );
            assert_eq!(got.len(), want.len(), "{} instance {instance}: {query:?}", kind.name());
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    same_row(g, w),
                    "{} instance {instance}, row {i}:\n got  {g:?}\n want {w:?}",
                    kind.name()
                );
            }
        }
    }
}
