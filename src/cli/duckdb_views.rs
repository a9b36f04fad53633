//! DuckDB views over exactly the objects trackiq's readers list. A glob such as
//! `read_parquet('samples/date=*/*.parquet')` also matches a compaction's merged inputs until
//! they are deleted (`[compactor] retain_secs`), so it counts those rows twice; a view over the
//! listed objects never does, and the objects it names stay readable for that retention.
//! Used by `trackiq tables --duckdb` and `trackiq bench sql`.

use trackiq_infra::DataStore;

/// The Parquet objects of `table` that trackiq's readers list, as DuckDB names them (a local
/// path for `file://`, the URL otherwise), with their sizes, sorted.
pub async fn visible_files(store: &DataStore, table: &str) -> anyhow::Result<Vec<(String, u64)>> {
    let listed = trackiq_infra::visible_store::visible_objects(store, table).await?;
    let local = store.root_url().scheme() == "file";
    let mut files: Vec<(String, u64)> = listed
        .into_iter()
        .filter(|m| m.location.extension() == Some("parquet"))
        .map(|m| (if local { format!("/{}", m.location) } else { format!("{}{}", store.root_url(), m.location) }, m.size))
        .collect();
    files.sort();
    Ok(files)
}

/// `CREATE OR REPLACE VIEW table AS SELECT * FROM read_parquet([...], hive_partitioning = true);`
/// or, for a table without objects yet, a comment saying so (DuckDB cannot read an empty list).
pub fn view(table: &str, files: &[(String, u64)]) -> String {
    if files.is_empty() {
        return format!("-- {table}: no objects yet");
    }
    let list: Vec<String> = files.iter().map(|(p, _)| format!("'{}'", p.replace('\'', "''"))).collect();
    format!("CREATE OR REPLACE VIEW {table} AS SELECT * FROM read_parquet([{}], hive_partitioning = true);", list.join(", "))
}
