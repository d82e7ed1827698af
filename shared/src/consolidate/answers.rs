//! Reading one worker's answer: the `annotationData.content` JSON string of the crowd form's output.
//!
//! A crowd form serialises every named element as `{"<name>": <output>}` (`contracts.md` §3). The name is
//! whatever the template used — AWS's own templates use the element name (`crowd-image-classifier`), but
//! its bounding-box template says `boundingBox` and samples say `annotatedResult` — so an answer is
//! recognised by its element name first and by its shape second. A task type that is not configured is
//! inferred the same way, and anything unrecognised is a custom answer.

use serde_json::{Map, Value};

use crate::task_type::{AnswerKind, TaskType};

/// Why a worker's answer cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// `annotationData` had neither `content` nor a readable `s3Uri`.
    #[error("answer unavailable: {0}")]
    Unavailable(String),
    /// The content is not JSON.
    #[error("answer is not JSON: {0}")]
    NotJson(String),
    /// The content is JSON but not an object.
    #[error("answer is not a JSON object")]
    NotAnObject,
    /// No element of the answer has the shape the task type needs.
    #[error("answer has no {0} element")]
    NoElement(&'static str),
    /// The element is there but its content is unusable.
    #[error("{0}")]
    Invalid(String),
}

/// Parses `annotationData.content`.
pub fn parse_content(content: &str) -> Result<Map<String, Value>, AnswerError> {
    match serde_json::from_str::<Value>(content) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(AnswerError::NotAnObject),
        Err(e) => Err(AnswerError::NotJson(e.to_string())),
    }
}

/// The answer kind an element output looks like, when it looks like a built-in one.
///
/// Called for every answer of a batch (task inference, element lookup), so it reads the output's few
/// keys in one pass instead of hashing each candidate key; the precedence is boxes, mask, entities,
/// single label, multi-label.
pub fn kind_of_output(output: &Value) -> Option<AnswerKind> {
    let obj = output.as_object()?;
    let (mut label, mut labels, mut entities) = (None, None, None);
    let mut segmentation = false;
    for (key, value) in obj {
        match key.as_str() {
            "boundingBoxes" => return Some(AnswerKind::BoundingBoxes),
            "labeledImage" => segmentation = true,
            "entities" => entities = Some(value),
            "label" => label = Some(value),
            "labels" => labels = Some(value),
            _ => {}
        }
    }
    if segmentation {
        return Some(AnswerKind::SegmentationMask);
    }
    if let Some(Value::Array(items)) = entities
        && items.iter().all(|e| e.get("startOffset").is_some())
    {
        return Some(AnswerKind::Entities);
    }
    if label.is_some_and(Value::is_string) {
        return Some(AnswerKind::SingleLabel);
    }
    if let Some(Value::Array(items)) = labels
        && items.iter().all(Value::is_string)
    {
        return Some(AnswerKind::MultiLabel);
    }
    None
}

fn kind_name(kind: AnswerKind) -> &'static str {
    match kind {
        AnswerKind::SingleLabel => "single-label",
        AnswerKind::MultiLabel => "multi-label",
        AnswerKind::BoundingBoxes => "bounding-box",
        AnswerKind::SegmentationMask => "semantic-segmentation",
        AnswerKind::Entities => "entity",
        AnswerKind::Unsupported => "supported",
        AnswerKind::Custom => "custom",
    }
}

/// The element output of `content` that answers a task of `task` type: the element named like the
/// type's crowd element, else the only element of the right shape.
pub fn element_for(content: &Map<String, Value>, task: TaskType) -> Result<&Value, AnswerError> {
    let kind = task.answer_kind();
    if let Some(name) = task.crowd_element()
        && let Some(output) = content.get(name)
        && kind_of_output(output) == Some(kind)
    {
        return Ok(output);
    }
    let mut matching = content.values().filter(|v| kind_of_output(v) == Some(kind));
    match (matching.next(), matching.next()) {
        (Some(output), None) => Ok(output),
        _ => Err(AnswerError::NoElement(kind_name(kind))),
    }
}

/// Infers a batch's task type from its answers: a crowd element name when one is used, else the shape
/// of the outputs; custom when answers disagree or look like nothing built in. `crowd-classifier`
/// answers are read as text classification, which consolidates exactly like video classification and
/// verification (the output `type` differs: configure `TASK_TYPE` for those).
pub fn infer_task_type<'a>(contents: impl IntoIterator<Item = &'a Map<String, Value>>) -> TaskType {
    let mut inferred: Option<TaskType> = None;
    for content in contents {
        let this = infer_one(content);
        match inferred {
            None => inferred = Some(this),
            Some(t) if t == this => {}
            Some(_) => return TaskType::Custom,
        }
    }
    inferred.unwrap_or(TaskType::Custom)
}

fn infer_one(content: &Map<String, Value>) -> TaskType {
    if content.len() != 1 {
        return TaskType::Custom;
    }
    let Some((name, output)) = content.iter().next() else {
        return TaskType::Custom;
    };
    if let Some(task) = TaskType::from_crowd_element(name)
        && kind_of_output(output) == Some(task.answer_kind())
    {
        return task;
    }
    match kind_of_output(output) {
        Some(AnswerKind::BoundingBoxes) => TaskType::BoundingBox,
        Some(AnswerKind::SegmentationMask) => TaskType::SemanticSegmentation,
        Some(AnswerKind::Entities) => TaskType::NamedEntityRecognition,
        Some(AnswerKind::SingleLabel) => TaskType::TextClassification,
        Some(AnswerKind::MultiLabel) => TaskType::TextMultiLabelClassification,
        _ => TaskType::Custom,
    }
}

/// The class name of a single-label answer.
pub fn single_label(output: &Value) -> Option<&str> {
    output.get("label").and_then(Value::as_str)
}

/// The class names of a multi-label answer.
pub fn multi_labels(output: &Value) -> Option<Vec<&str>> {
    output
        .get("labels")?
        .as_array()?
        .iter()
        .map(Value::as_str)
        .collect()
}

/// A worker's free-text comment, when the form has one (`workerComment`).
pub fn worker_comment(output: &Value) -> Option<&str> {
    output
        .get("workerComment")
        .and_then(Value::as_str)
        .filter(|c| !c.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(text: &str) -> Map<String, Value> {
        parse_content(text).unwrap()
    }

    #[test]
    fn recognises_built_in_elements_by_name_and_shape() {
        let cases = [
            (
                r#"{"crowd-image-classifier":{"label":"Cat"}}"#,
                TaskType::ImageClassification,
            ),
            (
                r#"{"crowd-image-classifier-multi-select":{"labels":["a","b"]}}"#,
                TaskType::ImageMultiLabelClassification,
            ),
            (
                r#"{"crowd-classifier":{"label":"x"}}"#,
                TaskType::TextClassification,
            ),
            (
                r#"{"category":{"label":"Correct"}}"#,
                TaskType::TextClassification,
            ),
            (
                r#"{"annotatedResult":{"boundingBoxes":[],"inputImageProperties":{"height":1,"width":1}}}"#,
                TaskType::BoundingBox,
            ),
            (
                r#"{"boundingBox":{"boundingBoxes":null,"inputImageProperties":{"height":1,"width":1}}}"#,
                TaskType::BoundingBox,
            ),
            (
                r#"{"crowd-semantic-segmentation":{"labeledImage":{"pngImageData":""}}}"#,
                TaskType::SemanticSegmentation,
            ),
            (
                r#"{"crowd-entity-annotation":{"entities":[{"startOffset":0,"endOffset":1,"label":"a"}]}}"#,
                TaskType::NamedEntityRecognition,
            ),
            (r#"{"entities":"{\"0\":{}}"}"#, TaskType::Custom),
            (r#"{"a":{"label":"x"},"b":{"label":"y"}}"#, TaskType::Custom),
        ];
        for (text, want) in cases {
            let c = content(text);
            assert_eq!(infer_task_type([&c]), want, "{text}");
        }
    }

    #[test]
    fn mixed_batches_are_custom() {
        let a = content(r#"{"crowd-classifier":{"label":"x"}}"#);
        let b = content(r#"{"crowd-classifier-multi-select":{"labels":["x"]}}"#);
        assert_eq!(infer_task_type([&a, &b]), TaskType::Custom);
        assert_eq!(infer_task_type(std::iter::empty()), TaskType::Custom);
    }

    #[test]
    fn picks_the_element_for_a_task() {
        let c = content(
            r#"{"comment":"hi","crowd-image-classifier":{"label":"Cat","workerComment":"blurry"}}"#,
        );
        let output = element_for(&c, TaskType::ImageClassification).unwrap();
        assert_eq!(single_label(output), Some("Cat"));
        assert_eq!(worker_comment(output), Some("blurry"));
        assert_eq!(
            element_for(&c, TaskType::BoundingBox),
            Err(AnswerError::NoElement("bounding-box"))
        );
        let m = content(r#"{"x":{"labels":["a","b"]}}"#);
        assert_eq!(
            multi_labels(element_for(&m, TaskType::TextMultiLabelClassification).unwrap()),
            Some(vec!["a", "b"])
        );
    }

    #[test]
    fn content_errors() {
        assert!(matches!(
            parse_content("nope"),
            Err(AnswerError::NotJson(_))
        ));
        assert_eq!(parse_content("[]"), Err(AnswerError::NotAnObject));
    }
}
