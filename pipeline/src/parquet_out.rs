//! Risk records as Parquet, for analysts (pandas, DuckDB, Spark).
//!
//! [`ParquetSink`] is a [`RecordSink`] that flattens each [`RiskRecord`] into
//! typed columns (see [`record_schema`]) and writes them with the `parquet`
//! crate's Arrow writer, one row group per [`ROWS_PER_ROW_GROUP`] records.
//! Nothing is lost: besides the columns an analyst filters on (signal codes
//! among them), `signals_json` keeps every signal with its weight and
//! evidence as the JSON the JSON Lines output would carry.
//!
//! The file depends only on the records: no wall clock, no host name, and a
//! `created_by` that names the writer's version, so the same replay gives
//! the same bytes.

use std::io::{self, Write};
use std::sync::Arc;

use arrow_array::builder::{
    ListBuilder, StringBuilder, TimestampMillisecondBuilder, UInt8Builder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use riskstream_schemas::{Event, RiskRecord, StepUpMethod, Timestamp};

use crate::replay::RecordSink;

/// Records per row group (and per Arrow batch). 64 Ki rows: about 10 MB of
/// column builders for typical records, so memory stays flat however long
/// the replay; close to DuckDB's own row-group size (122,880), so a scan
/// still parallelises over row groups of a modest file.
pub const ROWS_PER_ROW_GROUP: usize = 64 * 1024;

/// Time zone of the `time` and `last_strong_auth` columns: record times are
/// instants, written as UTC milliseconds like the JSON's `...Z` strings.
const UTC: &str = "UTC";

/// The Arrow schema of the Parquet output, one flat row per record.
///
/// | column | type | from the record |
/// |---|---|---|
/// | `tenant` | utf8 | `tenant` |
/// | `principal_id`, `principal_type` | utf8 | `principal.id`, `principal.type` |
/// | `session` | utf8 | `session` |
/// | `seq` | uint64 | `seq` |
/// | `time` | timestamp(ms, UTC) | `time` |
/// | `trigger_event_id`, `trigger_kind`, `trigger_name`, `trigger_sensitivity` | utf8 | `trigger.*` |
/// | `score` | uint8 | `score` |
/// | `level`, `decision` | utf8 | `level`, `decision` |
/// | `step_up_method` | utf8, nullable | `step_up.method` |
/// | `decision_low` … `decision_critical` | utf8 | `decisions.*` |
/// | `aal` | uint8 | `assurance.aal` |
/// | `last_strong_auth` | timestamp(ms, UTC), nullable | `assurance.last_strong_auth` |
/// | `signal_codes` | list<utf8> | `signals[].code`, in order |
/// | `signals_json` | utf8 | `signals` as JSON |
/// | `policy`, `model_version` | utf8 | `model.policy`, `model.version` |
pub fn record_schema() -> SchemaRef {
    let text = |name: &str| Field::new(name, DataType::Utf8, false);
    let time = |name: &str, nullable| {
        Field::new(
            name,
            DataType::Timestamp(TimeUnit::Millisecond, Some(UTC.into())),
            nullable,
        )
    };
    Arc::new(Schema::new(vec![
        text("tenant"),
        text("principal_id"),
        text("principal_type"),
        text("session"),
        Field::new("seq", DataType::UInt64, false),
        time("time", false),
        text("trigger_event_id"),
        text("trigger_kind"),
        text("trigger_name"),
        text("trigger_sensitivity"),
        Field::new("score", DataType::UInt8, false),
        text("level"),
        text("decision"),
        Field::new("step_up_method", DataType::Utf8, true),
        text("decision_low"),
        text("decision_medium"),
        text("decision_high"),
        text("decision_critical"),
        Field::new("aal", DataType::UInt8, false),
        time("last_strong_auth", true),
        Field::new(
            "signal_codes",
            DataType::List(Arc::new(signal_code_field())),
            false,
        ),
        text("signals_json"),
        text("policy"),
        text("model_version"),
    ]))
}

/// The item field of `signal_codes`: a code is never null.
fn signal_code_field() -> Field {
    Field::new_list_field(DataType::Utf8, false)
}

/// The wire name of a step-up method, as in the JSON record.
fn step_up_method_name(method: StepUpMethod) -> &'static str {
    match method {
        StepUpMethod::Mfa => "mfa",
        StepUpMethod::JitCredential => "jit_credential",
        StepUpMethod::Approval => "approval",
    }
}

/// One builder per column of [`record_schema`], in its order.
struct RecordColumns {
    tenant: StringBuilder,
    principal_id: StringBuilder,
    principal_type: StringBuilder,
    session: StringBuilder,
    seq: UInt64Builder,
    time: TimestampMillisecondBuilder,
    trigger_event_id: StringBuilder,
    trigger_kind: StringBuilder,
    trigger_name: StringBuilder,
    trigger_sensitivity: StringBuilder,
    score: UInt8Builder,
    level: StringBuilder,
    decision: StringBuilder,
    step_up_method: StringBuilder,
    decision_low: StringBuilder,
    decision_medium: StringBuilder,
    decision_high: StringBuilder,
    decision_critical: StringBuilder,
    aal: UInt8Builder,
    last_strong_auth: TimestampMillisecondBuilder,
    signal_codes: ListBuilder<StringBuilder>,
    signals_json: StringBuilder,
    policy: StringBuilder,
    model_version: StringBuilder,
    /// Rows appended since the last [`RecordColumns::finish`].
    rows: usize,
    /// Reused buffer for `signals_json`, so a row allocates nothing.
    scratch: Vec<u8>,
}

impl RecordColumns {
    fn new() -> Self {
        let text = || StringBuilder::with_capacity(ROWS_PER_ROW_GROUP, 16 * ROWS_PER_ROW_GROUP);
        let time =
            || TimestampMillisecondBuilder::with_capacity(ROWS_PER_ROW_GROUP).with_timezone(UTC);
        RecordColumns {
            tenant: text(),
            principal_id: text(),
            principal_type: text(),
            session: text(),
            seq: UInt64Builder::with_capacity(ROWS_PER_ROW_GROUP),
            time: time(),
            trigger_event_id: text(),
            trigger_kind: text(),
            trigger_name: text(),
            trigger_sensitivity: text(),
            score: UInt8Builder::with_capacity(ROWS_PER_ROW_GROUP),
            level: text(),
            decision: text(),
            step_up_method: text(),
            decision_low: text(),
            decision_medium: text(),
            decision_high: text(),
            decision_critical: text(),
            aal: UInt8Builder::with_capacity(ROWS_PER_ROW_GROUP),
            last_strong_auth: time(),
            signal_codes: ListBuilder::with_capacity(text(), ROWS_PER_ROW_GROUP)
                .with_field(signal_code_field()),
            signals_json: text(),
            policy: text(),
            model_version: text(),
            rows: 0,
            scratch: Vec::with_capacity(1024),
        }
    }

    fn push(&mut self, r: &RiskRecord) -> io::Result<()> {
        // The JSON first: it is the only step that can fail, and failing
        // before any builder moved keeps every column the same length.
        self.scratch.clear();
        serde_json::to_writer(&mut self.scratch, &r.signals)?;
        let signals_json = std::str::from_utf8(&self.scratch).map_err(io::Error::other)?;
        self.signals_json.append_value(signals_json);

        self.tenant.append_value(&r.tenant);
        self.principal_id.append_value(&r.principal.id);
        self.principal_type.append_value(r.principal.kind.as_str());
        self.session.append_value(&r.session);
        self.seq.append_value(r.seq);
        self.time.append_value(r.time.millis());
        self.trigger_event_id.append_value(&r.trigger.event_id);
        self.trigger_kind.append_value(r.trigger.kind.as_str());
        self.trigger_name.append_value(&r.trigger.name);
        self.trigger_sensitivity
            .append_value(r.trigger.sensitivity.as_str());
        self.score.append_value(r.score);
        self.level.append_value(r.level.as_str());
        self.decision.append_value(r.decision.as_str());
        self.step_up_method
            .append_option(r.step_up.as_ref().map(|s| step_up_method_name(s.method)));
        self.decision_low.append_value(r.decisions.low.as_str());
        self.decision_medium
            .append_value(r.decisions.medium.as_str());
        self.decision_high.append_value(r.decisions.high.as_str());
        self.decision_critical
            .append_value(r.decisions.critical.as_str());
        self.aal.append_value(r.assurance.aal);
        self.last_strong_auth
            .append_option(r.assurance.last_strong_auth.map(Timestamp::millis));
        for signal in &r.signals {
            self.signal_codes.values().append_value(&signal.code);
        }
        self.signal_codes.append(true);
        self.policy.append_value(&r.model.policy);
        self.model_version.append_value(&r.model.version);
        self.rows += 1;
        Ok(())
    }

    /// The rows appended so far as one batch; the builders start empty again.
    fn finish(&mut self, schema: &SchemaRef) -> Result<RecordBatch, ParquetError> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.tenant.finish()),
            Arc::new(self.principal_id.finish()),
            Arc::new(self.principal_type.finish()),
            Arc::new(self.session.finish()),
            Arc::new(self.seq.finish()),
            Arc::new(self.time.finish()),
            Arc::new(self.trigger_event_id.finish()),
            Arc::new(self.trigger_kind.finish()),
            Arc::new(self.trigger_name.finish()),
            Arc::new(self.trigger_sensitivity.finish()),
            Arc::new(self.score.finish()),
            Arc::new(self.level.finish()),
            Arc::new(self.decision.finish()),
            Arc::new(self.step_up_method.finish()),
            Arc::new(self.decision_low.finish()),
            Arc::new(self.decision_medium.finish()),
            Arc::new(self.decision_high.finish()),
            Arc::new(self.decision_critical.finish()),
            Arc::new(self.aal.finish()),
            Arc::new(self.last_strong_auth.finish()),
            Arc::new(self.signal_codes.finish()),
            Arc::new(self.signals_json.finish()),
            Arc::new(self.policy.finish()),
            Arc::new(self.model_version.finish()),
        ];
        self.rows = 0;
        Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
    }
}

/// Writes records to Parquet (see the [module docs](self)).
///
/// Call [`ParquetSink::finish`] at the end: the last row group and the
/// footer are written only then, and a file without its footer is not
/// Parquet.
pub struct ParquetSink<W: Write + Send> {
    writer: ArrowWriter<W>,
    schema: SchemaRef,
    columns: RecordColumns,
}

impl<W: Write + Send> ParquetSink<W> {
    /// A sink writing to `out`. The writer buffers internally, so `out` can
    /// be a plain [`std::fs::File`].
    pub fn new(out: W) -> io::Result<Self> {
        let schema = record_schema();
        // Snappy: what pandas, DuckDB and Spark write by default, fast to
        // write, and pure Rust. Dictionary encoding (Parquet's default) does
        // the rest for the repetitive columns.
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROWS_PER_ROW_GROUP))
            .build();
        let writer = ArrowWriter::try_new(out, Arc::clone(&schema), Some(props))
            .map_err(io::Error::other)?;
        Ok(ParquetSink {
            writer,
            schema,
            columns: RecordColumns::new(),
        })
    }

    fn write_batch(&mut self) -> Result<(), ParquetError> {
        let batch = self.columns.finish(&self.schema)?;
        self.writer.write(&batch)
    }

    /// Writes the rows still buffered and the footer, and returns the
    /// underlying writer (flushed).
    pub fn finish(mut self) -> io::Result<W> {
        if self.columns.rows > 0 {
            self.write_batch().map_err(io::Error::other)?;
        }
        let mut out = self.writer.into_inner().map_err(io::Error::other)?;
        out.flush()?;
        Ok(out)
    }
}

impl<W: Write + Send> RecordSink for ParquetSink<W> {
    fn accept(&mut self, _event: &Event, record: &RiskRecord) -> io::Result<()> {
        self.columns.push(record)?;
        if self.columns.rows >= ROWS_PER_ROW_GROUP {
            self.write_batch().map_err(io::Error::other)?;
        }
        Ok(())
    }
}
