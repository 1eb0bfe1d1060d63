//! The de-identification walk over one record (a resource, a Bundle, an NDJSON line).

use std::collections::HashMap;
use std::fmt::Write as _;

use base64::Engine as _;
use phiguard_detect::Category;
use phiguard_rules::tally::RuleCount;
use phiguard_rules::{
    Action, DateFormat, Engine, Generalize, Kind, Outcome, PatientRef, Rule, Tally,
};

use crate::FhirError;
use crate::dictionary::Dictionary;
use crate::json::Json;
use crate::narrative;
use crate::selector::{FhirSelector, Frame, Node};
use crate::types::{self, DType};

/// Facts about a Bundle needed before walking it: which fullUrls are Patients.
#[derive(Default)]
pub struct Index {
    /// `urn:uuid:...` (or any fullUrl) of a Patient entry → the Patient's id.
    patients: HashMap<String, String>,
    /// The first Patient entry's id.
    first_patient: Option<String>,
}

impl Index {
    pub fn of(root: &Json) -> Index {
        let mut ix = Index::default();
        if let Some(Json::Arr(entries)) = root.get("entry") {
            for e in entries {
                ix.add_entry(e);
            }
        }
        ix
    }

    /// Adds one item of the root's first `entry` array, in order (a streamed Bundle calls it
    /// entry by entry).
    pub fn add_entry(&mut self, e: &Json) {
        let Some(r) = e.get("resource") else { return };
        if r.get("resourceType").and_then(Json::as_str) != Some("Patient") {
            return;
        }
        let Some(id) = r.get("id").and_then(Json::as_str) else {
            return;
        };
        if self.first_patient.is_none() {
            self.first_patient = Some(id.to_string());
        }
        if let Some(u) = e.get("fullUrl").and_then(Json::as_str) {
            self.patients.insert(u.to_string(), id.to_string());
        }
    }
}

/// Extra facts about a value its siblings tell.
#[derive(Default, Clone, Copy)]
struct Siblings<'s> {
    content_type: Option<&'s str>,
    identifier_system: Option<&'s str>,
    contact_system: Option<&'s str>,
    text_is_display: bool,
}

pub struct Walker<'a> {
    pub rules: &'a [Rule<FhirSelector>],
    pub engine: &'a Engine,
    pub tally: &'a mut Tally,
    pub dict: &'a Dictionary,
    pub index: &'a Index,
    frames: Vec<Frame>,
    depth: usize,
    root: usize,
    rtype: String,
    patient: Option<PatientRef>,
    /// Set for the NDJSON line being walked, for errors.
    pub line: Option<usize>,
    /// Cap quantities in years at 90 (Safe Harbor ages over 89).
    pub cap_ages: bool,
    /// Per rule: values, changed, removed (flushed into the tally per record).
    counts: Vec<[u64; 3]>,
}

/// Sanitised path label for the report: element names only.
fn label(rtype: &str, path: &[Frame]) -> String {
    let clean = |s: &str| -> String {
        if !s.is_empty()
            && s.len() <= 64
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            s.to_string()
        } else {
            "?".to_string()
        }
    };
    let mut l = clean(rtype);
    for f in path {
        l.push('.');
        l.push_str(&clean(&f.name));
    }
    l
}

impl<'a> Walker<'a> {
    pub fn new(
        rules: &'a [Rule<FhirSelector>],
        engine: &'a Engine,
        tally: &'a mut Tally,
        dict: &'a Dictionary,
        index: &'a Index,
    ) -> Walker<'a> {
        Walker {
            rules,
            engine,
            tally,
            dict,
            index,
            frames: Vec::new(),
            depth: 0,
            root: 0,
            rtype: String::new(),
            patient: None,
            line: None,
            cap_ages: true,
            counts: vec![[0; 3]; rules.len()],
        }
    }

    /// Where the walk is: the NDJSON line and the JSON pointer (element names are FHIR's,
    /// array positions numbers).
    fn at(&self) -> String {
        let mut p = String::new();
        for f in &self.frames[..self.depth] {
            p.push('/');
            if f.underscore {
                p.push('_');
            }
            p.push_str(&f.name.replace('~', "~0").replace('/', "~1"));
            if let Some(i) = f.index {
                let _ = write!(p, "/{i}");
            }
        }
        if p.is_empty() {
            p.push('/');
        }
        match self.line {
            Some(l) => format!("line {l}, {p}"),
            None => p,
        }
    }

    fn push(&mut self, name: &str, dtype: DType, underscore: bool, index: Option<usize>) {
        if self.depth < self.frames.len() {
            let f = &mut self.frames[self.depth];
            f.name.clear();
            f.name.push_str(name);
            f.dtype = dtype;
            f.underscore = underscore;
            f.index = index;
        } else {
            self.frames.push(Frame {
                name: name.to_string(),
                dtype,
                underscore,
                index,
            });
        }
        self.depth += 1;
    }

    fn node(&self, dtype: DType, is_resource: bool, has_nested: bool) -> Node<'_> {
        Node {
            resource: &self.rtype,
            path: &self.frames[self.root..self.depth],
            dtype,
            extension_url: None,
            is_resource,
            has_nested,
            flat: false,
        }
    }

    /// The first rule before `limit` that selects the node.
    fn first_match(&self, node: &Node<'_>, limit: usize) -> Option<usize> {
        self.rules[..limit.min(self.rules.len())]
            .iter()
            .position(|r| r.selector.matches(node))
    }

    /// True when rule `i` can be applied to the whole subtree at once.
    fn wholesale(&self, node: &Node<'_>, i: usize) -> bool {
        matches!(self.rules[i].action, Action::Keep | Action::Remove)
            && !self.rules[..i]
                .iter()
                .any(|r| r.selector.may_match_below(node))
    }

    /// Walks a resource at the top of a record.
    pub fn walk_root(&mut self, root: &mut Json) -> Result<(), FhirError> {
        self.depth = 0;
        self.root = 0;
        let r = self.resource(root, None);
        self.flush_counts();
        r
    }

    fn resource(&mut self, v: &mut Json, inherited: Option<usize>) -> Result<(), FhirError> {
        let rtype = match v.get("resourceType") {
            Some(Json::Str(t)) if !t.is_empty() => t.clone(),
            _ => {
                return Err(FhirError::Structure {
                    at: self.at(),
                    what: "not a FHIR resource (no resourceType string)",
                });
            }
        };
        let saved_rtype = std::mem::replace(&mut self.rtype, rtype);
        let saved_root = std::mem::replace(&mut self.root, self.depth);
        let own = self.resource_patient(v);
        let saved_patient = match own {
            Some(p) => Some(self.patient.replace(self.engine.patient(&p))),
            None => None,
        };
        if self.rtype != "Bundle" {
            self.tally.records += 1;
        }
        let result = self.resource_body(v, inherited);
        self.rtype = saved_rtype;
        self.root = saved_root;
        if let Some(p) = saved_patient {
            self.patient = p;
        }
        result
    }

    fn resource_body(&mut self, v: &mut Json, inherited: Option<usize>) -> Result<(), FhirError> {
        let limit = inherited.unwrap_or(self.rules.len());
        let nested = self.rtype == "Bundle" || v.get("contained").is_some();
        let node = self.node(DType::Resource, true, nested);
        let m = self.first_match(&node, limit);
        let effective = m.or(inherited);
        if let Some(i) = effective
            && self.wholesale(&node, i)
        {
            let remove = self.rules[i].action == Action::Remove;
            self.count_rule(i, remove, remove);
            if remove {
                *v = Json::Gone;
            }
            return Ok(());
        }
        self.object(v, DType::Resource, effective)?;
        // A resource removed piece by piece (an earlier rule looked inside) goes whole.
        if let Some(i) = effective
            && self.rules[i].action == Action::Remove
            && matches!(v, Json::Obj(m) if m.iter().all(|(k, _)| k == "resourceType"))
        {
            *v = Json::Gone;
        }
        Ok(())
    }

    /// The patient a resource belongs to: its own id for a Patient, else its subject/patient
    /// reference, else the Bundle's Patient.
    fn resource_patient(&self, v: &Json) -> Option<String> {
        let rtype = self.rtype.as_str();
        if rtype == "Patient" {
            return v.get("id").and_then(Json::as_str).map(str::to_string);
        }
        if rtype == "Bundle" {
            return self.index.first_patient.clone();
        }
        for key in ["subject", "patient", "beneficiary"] {
            let Some(r) = v
                .get(key)
                .and_then(|s| s.get("reference"))
                .and_then(Json::as_str)
            else {
                continue;
            };
            if let Some(id) = self.index.patients.get(r) {
                return Some(id.clone());
            }
            if let Some(u) = r.strip_prefix("urn:uuid:") {
                if self.index.patients.is_empty() {
                    return Some(u.to_string());
                }
                continue;
            }
            let path = r.split(['?', '#']).next().unwrap_or(r);
            let segs: Vec<&str> = path.split('/').collect();
            let n = segs.len();
            let (t, id) = match segs.iter().position(|s| *s == "_history") {
                Some(h) if h >= 2 => (segs[h - 2], segs[h - 1]),
                _ if n >= 2 => (segs[n - 2], segs[n - 1]),
                _ => continue,
            };
            if t == "Patient" && !id.is_empty() {
                return Some(id.to_string());
            }
        }
        self.index.first_patient.clone()
    }

    fn object(
        &mut self,
        v: &mut Json,
        dtype: DType,
        inherited: Option<usize>,
    ) -> Result<(), FhirError> {
        let Json::Obj(members) = v else { return Ok(()) };
        // Sibling facts, copied out before the members are changed.
        let get = |k: &str| {
            members
                .iter()
                .find(|(n, _)| n == k)
                .and_then(|(_, x)| x.as_str())
                .map(str::to_string)
        };
        let content_type = if dtype == DType::Attachment {
            get("contentType")
        } else {
            None
        };
        let identifier_system = if dtype == DType::Identifier {
            get("system")
        } else {
            None
        };
        let contact_system = if dtype == DType::ContactPoint {
            get("system")
        } else {
            None
        };
        let text_is_display = dtype == DType::CodeableConcept && {
            let text = get("text");
            let displays = members.iter().find(|(n, _)| n == "coding").map(|(_, c)| c);
            match (text, displays) {
                (Some(t), Some(Json::Arr(cs))) => cs.iter().any(|c| {
                    c.get("display")
                        .and_then(Json::as_str)
                        .is_some_and(|d| d.trim().eq_ignore_ascii_case(t.trim()))
                }),
                _ => false,
            }
        };
        let sib = Siblings {
            content_type: content_type.as_deref(),
            identifier_system: identifier_system.as_deref(),
            contact_system: contact_system.as_deref(),
            text_is_display,
        };
        for (name, value) in members.iter_mut() {
            if name == "resourceType" && dtype == DType::Resource {
                continue;
            }
            self.member(dtype, name, value, inherited, sib)?;
        }
        members.retain(|(_, x)| !matches!(x, Json::Gone));
        if members.is_empty() {
            *v = Json::Gone;
        }
        Ok(())
    }

    /// One member of an object of type `dtype`: each item of an array (then the array goes
    /// when no item is left), or the value.
    fn member(
        &mut self,
        dtype: DType,
        name: &str,
        value: &mut Json,
        inherited: Option<usize>,
        sib: Siblings<'_>,
    ) -> Result<(), FhirError> {
        match value {
            Json::Arr(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.item(dtype, name, item, Some(i), inherited, sib)?;
                }
                items.retain(|x| !matches!(x, Json::Gone));
                if items.is_empty() {
                    *value = Json::Gone;
                }
                Ok(())
            }
            _ => self.item(dtype, name, value, None, inherited, sib),
        }
    }

    /// One value of member `name` (item `index` of its array, if it is one).
    fn item(
        &mut self,
        dtype: DType,
        name: &str,
        item: &mut Json,
        index: Option<usize>,
        inherited: Option<usize>,
        sib: Siblings<'_>,
    ) -> Result<(), FhirError> {
        let member_name = name.strip_prefix('_').unwrap_or(name);
        let underscore = member_name.len() != name.len();
        let t = types::member_type(dtype, &self.rtype, name, item);
        self.push(member_name, t, underscore, index);
        let r = self.value(item, t, inherited, sib);
        self.depth -= 1;
        r
    }

    /// Starts a Bundle document walked member by member and entry by entry (the streamed
    /// path), in the state [`Walker::walk_root`] gives a root Bundle: the Bundle's patient is
    /// the index's first Patient. Returns the rule the Bundle's members inherit, or `None`
    /// (with nothing counted) when that rule removes or keeps the Bundle whole, or removes it
    /// piece by piece: whether anything is left is only known at the end, so those go through
    /// the whole-document path.
    pub fn begin_bundle(&mut self) -> Option<Option<usize>> {
        self.depth = 0;
        self.root = 0;
        self.rtype.clear();
        self.rtype.push_str("Bundle");
        let node = self.node(DType::Resource, true, true);
        let m = self.first_match(&node, self.rules.len());
        if let Some(i) = m
            && (self.wholesale(&node, i) || self.rules[i].action == Action::Remove)
        {
            return None;
        }
        self.patient = self
            .index
            .first_patient
            .as_deref()
            .map(|p| self.engine.patient(p));
        Some(m)
    }

    /// One member of the Bundle begun by [`Walker::begin_bundle`] (`inherited` is what it
    /// returned), as [`Walker::walk_root`] walks it. `value` becomes [`Json::Gone`] when it
    /// is removed.
    pub fn bundle_member(
        &mut self,
        name: &str,
        value: &mut Json,
        inherited: Option<usize>,
    ) -> Result<(), FhirError> {
        if name == "resourceType" {
            return Ok(());
        }
        self.member(DType::Resource, name, value, inherited, Siblings::default())
    }

    /// Item `index` of the Bundle's `entry` array (streamed: the array is never whole).
    pub fn bundle_entry(
        &mut self,
        index: usize,
        entry: &mut Json,
        inherited: Option<usize>,
    ) -> Result<(), FhirError> {
        self.item(
            DType::Resource,
            "entry",
            entry,
            Some(index),
            inherited,
            Siblings::default(),
        )
    }

    /// Ends the Bundle: its rule counts go into the tally.
    pub fn end_bundle(&mut self) {
        self.flush_counts();
    }

    fn value(
        &mut self,
        v: &mut Json,
        dtype: DType,
        inherited: Option<usize>,
        sib: Siblings<'_>,
    ) -> Result<(), FhirError> {
        if dtype == DType::Resource && matches!(v, Json::Obj(_)) {
            return self.resource(v, inherited);
        }
        if self.cap_ages && matches!(dtype, DType::Quantity | DType::Age) {
            cap_age(v, self.tally);
        }
        let url_owned;
        let extension_url = if dtype == DType::Extension {
            url_owned = v.get("url").and_then(Json::as_str).map(str::to_string);
            url_owned.as_deref()
        } else {
            None
        };
        let limit = inherited.unwrap_or(self.rules.len());
        let flat = matches!(
            dtype,
            DType::Coding | DType::Quantity | DType::Age | DType::Period
        ) && matches!(v, Json::Obj(m) if !m.iter().any(|(k, _)| {
            k.starts_with('_') || k == "extension" || k == "modifierExtension"
        }));
        let (m, whole) = {
            let node = Node {
                resource: &self.rtype,
                path: &self.frames[self.root..self.depth],
                dtype,
                extension_url,
                is_resource: false,
                has_nested: false,
                flat,
            };
            let m = self.first_match(&node, limit).or(inherited);
            let whole = matches!(v, Json::Obj(_) | Json::Arr(_))
                && m.is_some_and(|i| self.wholesale(&node, i));
            (m, whole)
        };
        match v {
            Json::Obj(_) | Json::Arr(_) if whole => {
                if let Some(i) = m {
                    let remove = self.rules[i].action == Action::Remove;
                    self.count_rule(i, remove, remove);
                    if remove {
                        *v = Json::Gone;
                    }
                }
                Ok(())
            }
            Json::Obj(_) => self.object(v, dtype, m),
            Json::Arr(items) => {
                for item in items.iter_mut() {
                    self.value(item, dtype, m, sib)?;
                }
                items.retain(|x| !matches!(x, Json::Gone));
                if items.is_empty() {
                    *v = Json::Gone;
                }
                Ok(())
            }
            Json::Str(s) => {
                match self.leaf(s, dtype, m, sib)? {
                    Outcome::Keep => {}
                    Outcome::Remove => *v = Json::Gone,
                    Outcome::Replace(new) => *s = new,
                }
                Ok(())
            }
            Json::Num(n) => {
                let Some(i) = m else { return Ok(()) };
                let text = n.to_string();
                match self.leaf(&text, dtype, Some(i), sib)? {
                    Outcome::Keep => {}
                    Outcome::Remove => *v = Json::Gone,
                    Outcome::Replace(new) => {
                        *v = match serde_json::from_str::<serde_json::Number>(&new) {
                            Ok(num) => Json::Num(num),
                            Err(_) => Json::Str(new),
                        }
                    }
                }
                Ok(())
            }
            Json::Bool(b) => {
                let Some(i) = m else { return Ok(()) };
                let text = b.to_string();
                match self.leaf(&text, dtype, Some(i), sib)? {
                    Outcome::Keep => {}
                    Outcome::Remove => *v = Json::Gone,
                    Outcome::Replace(new) => *v = Json::Str(new),
                }
                Ok(())
            }
            Json::Null | Json::Gone => Ok(()),
        }
    }

    /// The action for a value no rule selected: fail safe.
    fn default_action(dtype: DType) -> Action {
        match dtype {
            DType::Code | DType::Boolean | DType::Number | DType::Time => Action::Keep,
            DType::Date | DType::DateTime | DType::Instant => Action::Generalize(Generalize::Year),
            DType::Id | DType::RefString | DType::Uid => Action::Pseudonym,
            DType::Base64 => Action::Remove,
            _ => Action::Text,
        }
    }

    fn kind(&self, dtype: DType, sib: Siblings<'_>) -> Kind {
        let name = self.frames[..self.depth]
            .last()
            .map_or("", |f| f.name.as_str());
        let parent = self
            .depth
            .checked_sub(2)
            .and_then(|i| self.frames.get(i))
            .map(|f| f.dtype);
        match dtype {
            DType::Date | DType::DateTime | DType::Instant => {
                if matches!(name, "birthDate" | "deceasedDateTime") {
                    Kind::BirthDate(DateFormat::Iso)
                } else {
                    Kind::Date(DateFormat::Iso)
                }
            }
            DType::Id | DType::RefString => Kind::Id,
            DType::Uid => Kind::Uid,
            _ => match parent {
                Some(DType::HumanName) => Kind::Phi(Category::Name),
                Some(DType::Address) if name == "postalCode" => Kind::Zip,
                Some(DType::Address) => Kind::Phi(Category::Location),
                Some(DType::ContactPoint) if name == "value" => {
                    Kind::Phi(match sib.contact_system {
                        Some("email") => Category::Email,
                        Some("fax") => Category::Fax,
                        Some("url") => Category::Url,
                        _ => Category::Phone,
                    })
                }
                Some(DType::Identifier) if name == "value" => {
                    if sib.identifier_system == Some("urn:dicom:uid") {
                        Kind::Uid
                    } else {
                        Kind::Id
                    }
                }
                Some(DType::Age) if name == "value" => Kind::Age,
                _ => Kind::Text,
            },
        }
    }

    fn leaf(
        &mut self,
        value: &str,
        dtype: DType,
        rule: Option<usize>,
        sib: Siblings<'_>,
    ) -> Result<Outcome, FhirError> {
        let rules = self.rules;
        let uncovered;
        let (id, action) = match rule {
            Some(i) => (rules[i].id.as_str(), rules[i].action),
            None => {
                uncovered = label(&self.rtype, &self.frames[self.root..self.depth]);
                (uncovered.as_str(), Self::default_action(dtype))
            }
        };
        let kind = self.kind(dtype, sib);
        let out = match (action, dtype) {
            (Action::Pseudonym, DType::RefString) => self.reference(value),
            (Action::Text, DType::Xhtml) => self.narrative(value)?,
            (Action::Text, DType::Base64) => self.attachment(value, sib.content_type)?,
            (Action::Text, _)
                if sib.text_is_display
                    && self.frames[..self.depth]
                        .last()
                        .is_some_and(|f| f.name == "text") =>
            {
                Outcome::Keep
            }
            (Action::Text, _) => match self.text(value)? {
                Some(s) => Outcome::Replace(s),
                None => Outcome::Keep,
            },
            (Action::Pseudonym, _) if kind == Kind::Uid => {
                // `urn:oid:1.2.3` (Identifier.value) keeps its prefix; the UID is pseudonymised
                // as the DICOM crate does, so ImagingStudy and the DICOM files agree.
                let (prefix, uid) = match value.strip_prefix("urn:oid:") {
                    Some(u) => ("urn:oid:", u),
                    None => ("", value),
                };
                Outcome::Replace(format!("{prefix}{}", self.engine.uid(uid)))
            }
            (_, _)
                if kind == Kind::Zip
                    && value.len() == 4
                    && value.bytes().all(|b| b.is_ascii_digit()) =>
            {
                // A US ZIP that lost its leading zero (spreadsheet exports, Synthea).
                let padded = format!("0{value}");
                return self.engine_apply(rule, id, action, kind, &padded);
            }
            _ => return self.engine_apply(rule, id, action, kind, value),
        };
        match rule {
            Some(i) => self.count_rule(
                i,
                !matches!(out, Outcome::Keep),
                matches!(out, Outcome::Remove),
            ),
            None => self.tally.count(
                id,
                false,
                action,
                !matches!(out, Outcome::Keep),
                matches!(out, Outcome::Remove),
            ),
        }
        Ok(out)
    }

    /// Counts one value for rule `i` (added to the tally when the record is done).
    fn count_rule(&mut self, i: usize, changed: bool, removed: bool) {
        if let Some(c) = self.counts.get_mut(i) {
            c[0] += 1;
            c[1] += u64::from(changed);
            c[2] += u64::from(removed);
        }
    }

    /// Adds the per-rule counts of this record to the tally.
    fn flush_counts(&mut self) {
        for (i, c) in self.counts.iter_mut().enumerate() {
            if c[0] == 0 {
                continue;
            }
            let rule = &self.rules[i];
            let e = self
                .tally
                .rules
                .entry(rule.id.clone())
                .or_insert_with(|| RuleCount {
                    action: rule.action.as_str(),
                    ..RuleCount::default()
                });
            e.values += c[0];
            e.changed += c[1];
            e.removed += c[2];
            *c = [0; 3];
        }
    }

    /// The engine's action on a value. Covered values are counted locally (a map update per
    /// value costs more than the action); the engine's notes (dates it could not read, birth
    /// dates over 89, ZIPs removed, shifts without a patient) are taken from a counted re-run
    /// on the rare values that can carry one.
    fn engine_apply(
        &mut self,
        rule: Option<usize>,
        id: &str,
        action: Action,
        kind: Kind,
        value: &str,
    ) -> Result<Outcome, FhirError> {
        let patient = self.patient.as_ref();
        let err = |w: &Walker<'_>, e: phiguard_rules::RuleError| FhirError::Rule {
            at: w.at(),
            what: e.to_string(),
        };
        let Some(i) = rule else {
            return self
                .engine
                .apply_counted(self.tally, id, false, action, kind, value, patient)
                .map_err(|e| err(self, e));
        };
        let out = self
            .engine
            .apply(action, kind, value, patient)
            .map_err(|e| err(self, e))?;
        let dated = matches!(kind, Kind::Date(_) | Kind::BirthDate(_));
        let may_note = (action != Action::Remove && out == Outcome::Remove)
            || (dated && patient.is_none() && !matches!(action, Action::Keep | Action::Remove));
        if may_note {
            let mut scratch = Tally::default();
            self.engine
                .apply_counted(&mut scratch, id, true, action, kind, value, patient)
                .map_err(|e| err(self, e))?;
            for (k, n) in scratch.notes {
                *self.tally.notes.entry(k).or_default() += n;
            }
        }
        self.count_rule(
            i,
            !matches!(out, Outcome::Keep),
            matches!(out, Outcome::Remove),
        );
        if !matches!(out, Outcome::Keep) {
            if self.tally.review.wants_next() {
                let label = format!("{} at {}", self.rules[i].id, self.at());
                let written = match &out {
                    Outcome::Replace(v) => Some(v.as_str()),
                    _ => None,
                };
                self.tally.sample_change(&label, action, written);
            } else {
                self.tally.review.skip();
            }
        }
        Ok(out)
    }

    /// The detector, then the record's own identifiers. `None` when nothing changed.
    fn text(&mut self, value: &str) -> Result<Option<String>, FhirError> {
        if value.trim().is_empty() {
            return Ok(None);
        }
        let (out, counts) = self
            .engine
            .text(value, self.patient.as_ref())
            .map_err(|e| FhirError::Rule {
                at: self.at(),
                what: e.to_string(),
            })?;
        for (c, n) in counts {
            self.tally.category(c, n);
        }
        let base = out.as_deref().unwrap_or(value);
        let res = match self.dict.scrub(base) {
            Some((s, counts)) => {
                for (c, n) in counts {
                    self.tally.category(c, n);
                }
                Some(s)
            }
            None => out.filter(|s| s != value),
        };
        if let Some(s) = &res {
            if self.tally.review.wants_next() {
                let at = format!("text at {}", self.at());
                self.tally.sample_change(&at, Action::Text, Some(s));
            } else {
                self.tally.review.skip();
            }
        }
        Ok(res)
    }

    fn narrative(&mut self, div: &str) -> Result<Outcome, FhirError> {
        Ok(match narrative::rewrite(div, |t| self.text(t))? {
            Some(s) => Outcome::Replace(s),
            None => Outcome::Keep,
        })
    }

    /// Attachment data: text types are decoded, de-identified and encoded again; anything else
    /// (and anything that does not decode as UTF-8 text) is removed.
    fn attachment(&mut self, data: &str, content_type: Option<&str>) -> Result<Outcome, FhirError> {
        let ct = content_type.unwrap_or("").trim().to_ascii_lowercase();
        let texty = ct.starts_with("text/")
            || ct.starts_with("application/json")
            || ct.starts_with("application/fhir+json")
            || ct.starts_with("application/xml");
        if !texty {
            self.tally.note("attachment_not_text_removed");
            return Ok(Outcome::Remove);
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let compact: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let Ok(bytes) = b64.decode(compact.as_bytes()) else {
            self.tally.note("attachment_not_base64_removed");
            return Ok(Outcome::Remove);
        };
        let Ok(text) = String::from_utf8(bytes) else {
            self.tally.note("attachment_not_utf8_removed");
            return Ok(Outcome::Remove);
        };
        Ok(match self.text(&text)? {
            Some(s) => Outcome::Replace(b64.encode(s.as_bytes())),
            None => Outcome::Keep,
        })
    }

    /// A reference with its id pseudonymised: `Patient/abc` and `urn:uuid:abc` keep their
    /// form, `#abc` points at the contained resource's new id, conditional references keep the
    /// system and lose the value. Anything else is pseudonymised whole.
    fn reference(&self, r: &str) -> Outcome {
        let e = self.engine;
        let p = |s: &str| e.id_pseudonym(s);
        let t = r.trim();
        if t.is_empty() {
            return Outcome::Keep;
        }
        if let Some(id) = t.strip_prefix('#') {
            return Outcome::Replace(if id.is_empty() {
                "#".into()
            } else {
                format!("#{}", p(id))
            });
        }
        if let Some(id) = t.strip_prefix("urn:uuid:") {
            return Outcome::Replace(format!("urn:uuid:{}", p(id)));
        }
        if let Some((path, query)) = t.split_once('?') {
            let mut out = String::with_capacity(t.len());
            out.push_str(path);
            out.push('?');
            for (i, kv) in query.split('&').enumerate() {
                if i > 0 {
                    out.push('&');
                }
                match kv.split_once('=') {
                    Some((k, v)) => {
                        out.push_str(k);
                        out.push('=');
                        match v.rsplit_once('|') {
                            Some((sys, val)) => {
                                out.push_str(sys);
                                out.push('|');
                                out.push_str(&p(val));
                            }
                            None => out.push_str(&p(v)),
                        }
                    }
                    None => out.push_str(&p(kv)),
                }
            }
            // The path part of a conditional reference is a resource type (possibly with a base).
            if !path
                .rsplit('/')
                .next()
                .is_some_and(|s| s.bytes().next().is_some_and(|b| b.is_ascii_uppercase()))
            {
                return Outcome::Replace(p(t));
            }
            return Outcome::Replace(out);
        }
        let segs: Vec<&str> = t.split('/').collect();
        let n = segs.len();
        let typed = |i: usize| {
            segs.get(i).is_some_and(|s| {
                s.bytes().next().is_some_and(|b| b.is_ascii_uppercase())
                    && s.bytes().all(|b| b.is_ascii_alphanumeric())
            })
        };
        if n == 1 && typed(0) {
            // `Patient` (a request.url for a create): a type, nothing to hide.
            return Outcome::Keep;
        }
        let id_at = match segs.iter().position(|s| *s == "_history") {
            Some(h) if h >= 2 && typed(h - 2) => Some(h - 1),
            Some(_) => None,
            None if n >= 2 && typed(n - 2) => Some(n - 1),
            None => None,
        };
        match id_at {
            Some(i) if !segs[i].is_empty() => {
                let mut parts: Vec<String> = segs.iter().map(|s| s.to_string()).collect();
                parts[i] = p(segs[i]);
                Outcome::Replace(parts.join("/"))
            }
            _ => Outcome::Replace(p(t)),
        }
    }
}

/// A quantity in years (UCUM `a`, or a unit spelled as years) of 90 or more is an age over 89
/// under Safe Harbor: it becomes `>= 90`, which is still valid FHIR and still says "old".
fn cap_age(v: &mut Json, tally: &mut Tally) {
    let Json::Obj(m) = v else { return };
    let text = |k: &str| {
        m.iter()
            .find(|(n, _)| n == k)
            .and_then(|(_, x)| x.as_str())
            .map(|s| s.trim().to_ascii_lowercase())
    };
    let years = text("code").is_some_and(|c| c == "a")
        || text("unit")
            .is_some_and(|u| matches!(u.as_str(), "a" | "yr" | "yrs" | "year" | "years"));
    if !years {
        return;
    }
    let Some(value) = m.iter_mut().find(|(n, _)| n == "value").map(|(_, x)| x) else {
        return;
    };
    let old = match value {
        Json::Num(n) => n.as_f64().is_some_and(|x| x >= 90.0),
        _ => false,
    };
    if !old {
        return;
    }
    *value = Json::Num(90u64.into());
    match m.iter_mut().find(|(n, _)| n == "comparator") {
        Some((_, c)) => *c = Json::Str(">=".into()),
        None => m.push(("comparator".into(), Json::Str(">=".into()))),
    }
    tally.note("age_over_89_capped");
}

/// Collects the record's identifying values for scrubbing its free text.
pub fn collect(v: &Json, parent: DType, rtype: &str, keep_city: bool, dict: &mut Dictionary) {
    match v {
        Json::Obj(members) => {
            let (rtype, resource) = match v.get("resourceType") {
                Some(Json::Str(t)) => (t.as_str(), true),
                _ => (rtype, false),
            };
            // Names, addresses and telecoms live in the resources about people and places;
            // elsewhere only identifiers and contained resources are looked at.
            let people = matches!(
                rtype,
                "Patient"
                    | "Practitioner"
                    | "PractitionerRole"
                    | "RelatedPerson"
                    | "Person"
                    | "Organization"
                    | "Location"
                    | "Bundle"
            );
            let is_maiden = parent == DType::Extension
                && v.get("url")
                    .and_then(Json::as_str)
                    .is_some_and(|u| u.ends_with("patient-mothersMaidenName"));
            for (name, x) in members {
                if resource && !people && name != "identifier" && name != "contained" {
                    continue;
                }
                let items: &[Json] = match x {
                    Json::Arr(a) => a,
                    one => std::slice::from_ref(one),
                };
                for item in items {
                    collect_item(item, parent, rtype, name, is_maiden, keep_city, dict);
                }
            }
        }
        Json::Arr(a) => {
            for x in a {
                collect(x, parent, rtype, keep_city, dict);
            }
        }
        _ => {}
    }
}

/// One value (an array item, or the value) of member `name` of an object of type `parent` in
/// a resource of type `rtype`, for [`collect`]. A streamed Bundle calls it for each of its
/// top-level members and each `entry` item, as `collect` on the whole Bundle would (a Bundle
/// is a resource "about people": every member is looked at).
pub fn collect_item(
    item: &Json,
    parent: DType,
    rtype: &str,
    name: &str,
    is_maiden: bool,
    keep_city: bool,
    dict: &mut Dictionary,
) {
    if let Json::Str(s) = item {
        let cat = match (parent, name) {
            (DType::HumanName, "family" | "given" | "text") => Some(Category::Name),
            (DType::Address, "line" | "text") => Some(Category::Location),
            (DType::Address, "city" | "district" | "postalCode") if !keep_city => {
                Some(Category::Location)
            }
            (DType::ContactPoint, "value") => Some(Category::Phone),
            (DType::Identifier, "value") => Some(Category::OtherId),
            (DType::Extension, "valueString") if is_maiden => Some(Category::Name),
            _ => None,
        };
        if let Some(c) = cat {
            dict.add(s, c);
        }
    } else {
        let t = types::member_type(parent, rtype, name, item);
        collect(item, t, rtype, keep_city, dict);
    }
}
