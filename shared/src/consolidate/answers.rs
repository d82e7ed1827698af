//! Reading one worker's answer: the `annotationData.content` JSON string of the crowd form's output.
//!
//! A crowd form serialises every named element as `{"<name>": <output>}` (`contracts.md` §3). The name is
//! whatever the template used — AWS's own templates use the element name (`crowd-image-classifier`), but
//! its bounding-box template says `boundingBox` and samples say `annotatedResult` — so an answer is
//! recognised by its element name first and by its shape second. A task type that is not configured is
//! inferred the same way, and anything unrecognised is a custom answer.
//!
//! ## Why no JSON tree
//! A batch reads thousands of these small documents (1,000 objects × 5 workers is a common batch), and
//! building a `serde_json::Map` per answer and per element costs far more than the few keys the engines
//! read from it. So an answer is read once, in one pass, into [`Answer`]: its elements by name, each with
//! the few keys the built-in kinds are told apart by picked out ([`OutputShape`]: a class label, a label
//! list, a comment, which kind it looks like), strings borrowed from the answer's text where they have no
//! escapes. The classification paths need nothing more. Boxes, entities and masks read their element's
//! whole output straight into their engine's typed input ([`Answer::read_output`], with the readers of
//! `reading`); only custom answers, whose shape is open, are read into a tree ([`parse_content`]).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
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

/// One worker's answer: its elements in their order, read from (and borrowing) the answer's text. A name
/// given twice keeps its first position and its last output, as a JSON object map does.
#[derive(Debug, Clone)]
pub struct Answer<'a> {
    text: &'a str,
    elements: Vec<Element<'a>>,
}

/// One named element of an answer.
#[derive(Debug, Clone)]
pub struct Element<'a> {
    /// The element's name in the form (`crowd-image-classifier`, `category`, …).
    pub name: Cow<'a, str>,
    /// What its output looks like.
    pub shape: OutputShape<'a>,
}

/// The keys of an element output that tell the built-in answer kinds apart, read in one pass.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutputShape<'a> {
    /// The built-in kind the output looks like, if any (precedence: boxes, mask, entities, single label,
    /// multi-label).
    pub kind: Option<AnswerKind>,
    /// `label`, when it is a string.
    pub label: Option<Cow<'a, str>>,
    /// `labels`, when it is an array of strings.
    pub labels: Option<Vec<Cow<'a, str>>>,
    /// `workerComment`, when it is a string that is not blank.
    pub comment: Option<Cow<'a, str>>,
}

impl<'a> Answer<'a> {
    /// Reads `annotationData.content`.
    pub fn parse(content: &'a str) -> Result<Self, AnswerError> {
        let elements = serde_json::from_str::<Elements<'a>>(content)
            .map_err(|e| match e.classify() {
                serde_json::error::Category::Data => AnswerError::NotAnObject,
                _ => AnswerError::NotJson(e.to_string()),
            })?
            .0;
        Ok(Answer {
            text: content,
            elements,
        })
    }

    /// The answer's text.
    pub fn text(&self) -> &'a str {
        self.text
    }

    /// The output of `element` (one of this answer's) read by `T`, straight from the answer's text: the
    /// engines that read whole outputs (boxes, entities, masks) get their typed input this way, in one
    /// pass. The answer's other elements are checked as a tree parse would check them (an answer that
    /// parse refuses is refused with its message); a name given twice gives its last output.
    pub fn read_output<T: Deserialize<'a>>(&self, element: &Element<'_>) -> Result<T, AnswerError> {
        let mut deserializer = serde_json::Deserializer::from_str(self.text);
        let picked = de::DeserializeSeed::deserialize(
            PickOutput::<T> {
                name: &element.name,
                output: PhantomData,
            },
            &mut deserializer,
        )
        .and_then(|picked| deserializer.end().map(|()| picked));
        match picked {
            Ok(Some(output)) => Ok(output),
            Ok(None) => Err(AnswerError::Invalid(format!(
                "answer has no `{}`",
                element.name
            ))),
            Err(e) if e.classify() == serde_json::error::Category::Data => {
                Err(AnswerError::NotAnObject)
            }
            Err(e) => Err(AnswerError::NotJson(e.to_string())),
        }
    }

    /// The elements, in their order.
    pub fn elements(&self) -> &[Element<'a>] {
        &self.elements
    }

    /// The element that answers a task of `task` type: the one named like the type's crowd element, else
    /// the only element of the right shape.
    pub fn element_for(&self, task: TaskType) -> Result<&Element<'a>, AnswerError> {
        let kind = Some(task.answer_kind());
        if let Some(name) = task.crowd_element()
            && let Some(element) = self.elements.iter().find(|e| e.name == name)
            && element.shape.kind == kind
        {
            return Ok(element);
        }
        let mut matching = self.elements.iter().filter(|e| e.shape.kind == kind);
        match (matching.next(), matching.next()) {
            (Some(element), None) => Ok(element),
            _ => Err(AnswerError::NoElement(kind_name(task.answer_kind()))),
        }
    }
}

/// Parses `annotationData.content` into a JSON tree (custom answers are compared whole).
pub fn parse_content(content: &str) -> Result<Map<String, Value>, AnswerError> {
    match serde_json::from_str::<Value>(content) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(AnswerError::NotAnObject),
        Err(e) => Err(AnswerError::NotJson(e.to_string())),
    }
}

/// The output named `name` of an answer object, read by `T` (the last one when the name is given twice);
/// every other value is checked and dropped.
struct PickOutput<'n, T> {
    name: &'n str,
    output: PhantomData<T>,
}

impl<'de, T: Deserialize<'de>> de::DeserializeSeed<'de> for PickOutput<'_, T> {
    type Value = Option<T>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<T>, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for PickOutput<'_, T> {
    type Value = Option<T>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of crowd elements")
    }
    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Option<T>, M::Error> {
        let mut output = None;
        while let Some(key) = super::reading::next_key(&mut map)? {
            if key == self.name {
                output = Some(map.next_value::<T>()?);
            } else {
                super::reading::next_value::<super::reading::Scalar<'de>, M>(&mut map)?;
            }
        }
        Ok(output)
    }
}

/// An answer's elements, as [`Answer::parse`] reads them.
struct Elements<'a>(Vec<Element<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for Elements<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ElementsVisitor<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for ElementsVisitor<'a> {
            type Value = Elements<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object of crowd elements")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Elements<'a>, M::Error> {
                let mut elements: Vec<Element<'a>> = Vec::with_capacity(1);
                while let Some(Loose(name)) = map.next_key::<Loose<Cow<'a, str>>>()? {
                    // Keys are strings: serde's own `Cow` would copy every one of them.
                    let name = name.unwrap_or_default();
                    // Any JSON is an output; one that is not an object has no built-in shape.
                    let shape = map
                        .next_value::<Loose<OutputShape<'a>>>()?
                        .0
                        .unwrap_or_default();
                    let element = Element { name, shape };
                    match elements.iter_mut().find(|e| e.name == element.name) {
                        Some(earlier) => *earlier = element,
                        None => elements.push(element),
                    }
                }
                Ok(Elements(elements))
            }
        }
        deserializer.deserialize_map(ElementsVisitor(PhantomData))
    }
}

/// A JSON value read as `T` when it has the JSON type `T` reads, and skipped (`None`) when it has
/// another: the shape probes accept any JSON and only look at the types they need.
struct Loose<T>(Option<T>);

/// What reads a value for [`Loose`]: each JSON type `T` does not read is drained.
trait LooseVisit<'de>: Sized {
    fn from_str(_: Cow<'de, str>) -> Option<Self> {
        None
    }
    fn from_seq<S: SeqAccess<'de>>(seq: S) -> Result<Option<Self>, S::Error> {
        IgnoredAny.visit_seq(seq).map(|_| None)
    }
    fn from_map<M: MapAccess<'de>>(map: M) -> Result<Option<Self>, M::Error> {
        IgnoredAny.visit_map(map).map(|_| None)
    }
}

impl<'de, T: LooseVisit<'de>> Deserialize<'de> for Loose<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LooseVisitor<T>(PhantomData<T>);
        impl<'de, T: LooseVisit<'de>> Visitor<'de> for LooseVisitor<T> {
            type Value = Loose<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Loose<T>, E> {
                Ok(Loose(T::from_str(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Loose<T>, E> {
                Ok(Loose(T::from_str(Cow::Owned(v.to_owned()))))
            }
            fn visit_seq<S: SeqAccess<'de>>(self, seq: S) -> Result<Loose<T>, S::Error> {
                T::from_seq(seq).map(Loose)
            }
            fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Loose<T>, M::Error> {
                T::from_map(map).map(Loose)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Loose<T>, E> {
                Ok(Loose(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Loose<T>, E> {
                Ok(Loose(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Loose<T>, E> {
                Ok(Loose(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Loose<T>, E> {
                Ok(Loose(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Loose<T>, E> {
                Ok(Loose(None))
            }
        }
        deserializer.deserialize_any(LooseVisitor(PhantomData))
    }
}

impl<'de: 'a, 'a> LooseVisit<'de> for OutputShape<'a> {
    fn from_map<M: MapAccess<'de>>(mut map: M) -> Result<Option<Self>, M::Error> {
        let mut shape = OutputShape::default();
        let (mut boxes, mut mask, mut entities) = (false, false, false);
        while let Some(Loose(key)) = map.next_key::<Loose<Cow<'de, str>>>()? {
            match key.as_deref().unwrap_or_default() {
                "boundingBoxes" => {
                    boxes = true;
                    map.next_value::<IgnoredAny>()?;
                }
                "labeledImage" => {
                    mask = true;
                    map.next_value::<IgnoredAny>()?;
                }
                "entities" => {
                    entities = map
                        .next_value::<Loose<EntityList>>()?
                        .0
                        .is_some_and(|list| list.0);
                }
                "label" => shape.label = map.next_value::<Loose<Cow<'a, str>>>()?.0,
                "labels" => shape.labels = map.next_value::<Loose<StrList<'a>>>()?.0.map(|l| l.0),
                "workerComment" => {
                    shape.comment = map
                        .next_value::<Loose<Cow<'a, str>>>()?
                        .0
                        .filter(|c| !c.trim().is_empty());
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        shape.kind = if boxes {
            Some(AnswerKind::BoundingBoxes)
        } else if mask {
            Some(AnswerKind::SegmentationMask)
        } else if entities {
            Some(AnswerKind::Entities)
        } else if shape.label.is_some() {
            Some(AnswerKind::SingleLabel)
        } else if shape.labels.is_some() {
            Some(AnswerKind::MultiLabel)
        } else {
            None
        };
        Ok(Some(shape))
    }
}

/// A JSON string, borrowed when it has no escapes.
impl<'de: 'a, 'a> LooseVisit<'de> for Cow<'a, str> {
    fn from_str(s: Cow<'de, str>) -> Option<Self> {
        Some(s)
    }
}

/// A JSON array whose items are all strings.
struct StrList<'a>(Vec<Cow<'a, str>>);

impl<'de: 'a, 'a> LooseVisit<'de> for StrList<'a> {
    fn from_seq<S: SeqAccess<'de>>(mut seq: S) -> Result<Option<Self>, S::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(2));
        let mut all_strings = true;
        while let Some(item) = seq.next_element::<Loose<Cow<'a, str>>>()? {
            match item.0 {
                Some(s) if all_strings => items.push(s),
                _ => all_strings = false,
            }
        }
        Ok(all_strings.then_some(StrList(items)))
    }
}

/// A JSON array: whether its items are all objects with a `startOffset` key.
struct EntityList(bool);

/// A JSON object: whether it has a `startOffset` key.
struct HasStartOffset(bool);

impl<'de> LooseVisit<'de> for EntityList {
    fn from_seq<S: SeqAccess<'de>>(mut seq: S) -> Result<Option<Self>, S::Error> {
        let mut all = true;
        while let Some(item) = seq.next_element::<Loose<HasStartOffset>>()? {
            all &= item.0.is_some_and(|i| i.0);
        }
        Ok(Some(EntityList(all)))
    }
}

impl<'de> LooseVisit<'de> for HasStartOffset {
    fn from_map<M: MapAccess<'de>>(mut map: M) -> Result<Option<Self>, M::Error> {
        let mut found = false;
        while let Some(Loose(key)) = map.next_key::<Loose<Cow<'de, str>>>()? {
            found |= key.as_deref() == Some("startOffset");
            map.next_value::<IgnoredAny>()?;
        }
        Ok(Some(HasStartOffset(found)))
    }
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

/// Infers a batch's task type from its answers: each answer's type is its crowd element name when one is
/// used, else the shape of its output ([`answer_task_type`]); the batch's is the most common of these, so
/// one stray answer of another shape cannot flip a batch (the caller leaves such answers out). Custom
/// when there are no answers or the two most common types are tied. `crowd-classifier` answers are read
/// as text classification, which consolidates exactly like video classification and verification (the
/// output `type` differs: configure `TASK_TYPE` for those).
pub fn infer_task_type<'a, 'b: 'a>(answers: impl IntoIterator<Item = &'a Answer<'b>>) -> TaskType {
    // Few distinct types per batch: a small vector in first-seen order beats a map.
    let mut counts: Vec<(TaskType, usize)> = Vec::new();
    for answer in answers {
        let this = infer_one(answer);
        match counts.iter_mut().find(|(t, _)| *t == this) {
            Some((_, n)) => *n += 1,
            None => counts.push((this, 1)),
        }
    }
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    match counts.as_slice() {
        [] => TaskType::Custom,
        [(_, n), (_, m), ..] if n == m => TaskType::Custom,
        [(first, _), ..] => *first,
    }
}

/// The task type one answer looks like on its own (see [`infer_task_type`]).
pub fn answer_task_type(answer: &Answer<'_>) -> TaskType {
    infer_one(answer)
}

fn infer_one(answer: &Answer<'_>) -> TaskType {
    let [element] = answer.elements() else {
        return TaskType::Custom;
    };
    let kind = element.shape.kind;
    if let Some(task) = TaskType::from_crowd_element(&element.name)
        && kind == Some(task.answer_kind())
    {
        return task;
    }
    match kind {
        Some(AnswerKind::BoundingBoxes) => TaskType::BoundingBox,
        Some(AnswerKind::SegmentationMask) => TaskType::SemanticSegmentation,
        Some(AnswerKind::Entities) => TaskType::NamedEntityRecognition,
        Some(AnswerKind::SingleLabel) => TaskType::TextClassification,
        Some(AnswerKind::MultiLabel) => TaskType::TextMultiLabelClassification,
        _ => TaskType::Custom,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(text: &str) -> Answer<'_> {
        Answer::parse(text).unwrap()
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
            // Shapes that only look close: a numeric label, a list with a number, entities without
            // offsets, an output that is not an object.
            (r#"{"x":{"label":3}}"#, TaskType::Custom),
            (r#"{"x":{"labels":["a",1]}}"#, TaskType::Custom),
            (r#"{"x":{"entities":[{"label":"a"}]}}"#, TaskType::Custom),
            (r#"{"x":[{"label":"a"}]}"#, TaskType::Custom),
        ];
        for (text, want) in cases {
            let a = answer(text);
            assert_eq!(infer_task_type([&a]), want, "{text}");
        }
    }

    #[test]
    fn mixed_batches_follow_the_majority() {
        let a = answer(r#"{"crowd-classifier":{"label":"x"}}"#);
        let b = answer(r#"{"crowd-classifier-multi-select":{"labels":["x"]}}"#);
        assert_eq!(infer_task_type([&a, &b]), TaskType::Custom, "a tie");
        assert_eq!(
            infer_task_type([&a, &a, &b]),
            infer_task_type([&a]),
            "the most common type wins"
        );
        assert_eq!(infer_task_type(std::iter::empty()), TaskType::Custom);
    }

    #[test]
    fn picks_the_element_for_a_task() {
        let a = answer(
            r#"{"comment":"hi","crowd-image-classifier":{"label":"Cat","workerComment":"blurry"}}"#,
        );
        let element = a.element_for(TaskType::ImageClassification).unwrap();
        assert_eq!(element.shape.label.as_deref(), Some("Cat"));
        assert_eq!(element.shape.comment.as_deref(), Some("blurry"));
        assert_eq!(
            a.element_for(TaskType::BoundingBox).err(),
            Some(AnswerError::NoElement("bounding-box"))
        );
        let m = answer(r#"{"x":{"labels":["a","b"],"workerComment":"  "}}"#);
        let element = m
            .element_for(TaskType::TextMultiLabelClassification)
            .unwrap();
        assert_eq!(
            element.shape.labels,
            Some(vec![Cow::Borrowed("a"), Cow::Borrowed("b")])
        );
        assert_eq!(element.shape.comment, None, "a blank comment is no comment");
    }

    #[test]
    fn escaped_text_is_read_unescaped_and_plain_text_is_borrowed() {
        let a = answer(r#"{"crowd-classifier":{"label":"Caf\u00e9 \"noir\""}}"#);
        let label = &a.elements()[0].shape.label;
        assert_eq!(label.as_deref(), Some("Café \"noir\""));
        let b = answer(r#"{"crowd-classifier":{"label":"plain"}}"#);
        assert!(matches!(
            b.elements()[0].shape.label,
            Some(Cow::Borrowed("plain"))
        ));
    }

    #[test]
    fn a_repeated_key_keeps_its_place_and_its_last_value_like_a_json_map() {
        let text = r#"{"a":{"label":"x"},"b":1,"a":{"label":"y","label":"z"}}"#;
        let a = answer(text);
        let names: Vec<&str> = a.elements().iter().map(|e| e.name.as_ref()).collect();
        let tree = parse_content(text).unwrap();
        assert_eq!(names, tree.keys().map(String::as_str).collect::<Vec<_>>());
        let first = &a.elements()[0];
        assert_eq!(first.shape.label.as_deref(), Some("z"));
        assert_eq!(a.read_output::<Value>(first).unwrap(), tree["a"]);
    }

    #[test]
    fn the_raw_output_parses_to_the_same_tree() {
        let text = r#"{"annotatedResult":{"boundingBoxes":[{"left":1,"top":2,"width":3,"height":4,"label":"car"}],"inputImageProperties":{"height":10,"width":20}}}"#;
        let a = answer(text);
        let element = a.element_for(TaskType::BoundingBox).unwrap();
        assert_eq!(
            a.read_output::<Value>(element).unwrap(),
            parse_content(text).unwrap()["annotatedResult"]
        );
    }

    #[test]
    fn content_errors() {
        assert!(matches!(
            Answer::parse("nope"),
            Err(AnswerError::NotJson(_))
        ));
        assert!(matches!(
            Answer::parse(r#"{"a":1"#),
            Err(AnswerError::NotJson(_))
        ));
        assert!(matches!(Answer::parse("[]"), Err(AnswerError::NotAnObject)));
        assert!(matches!(Answer::parse("3"), Err(AnswerError::NotAnObject)));
        assert!(matches!(
            parse_content("nope"),
            Err(AnswerError::NotJson(_))
        ));
        assert_eq!(parse_content("[]"), Err(AnswerError::NotAnObject));
    }
}
