//! The parsed page flattened into a list of events (open element, text, close
//! element) with its elements numbered in document order. Built by one iterative walk
//! (no recursion, so deep documents cannot overflow the stack); the main-content
//! analysis and the collector both read it, so they see the same elements.

use scraper::node::Element;
use scraper::{Html, Node};

use super::text::SKIPPED_ELEMENTS;

/// An element's number: its position in document order.
pub(super) type ElementId = u32;

/// One step of the walk.
#[derive(Debug, Clone, Copy)]
pub(super) enum Event<'a> {
    /// Entering element `id`.
    Open(ElementId),
    /// A text node.
    Text(&'a str),
    /// Leaving element `id`.
    Close(ElementId),
}

/// An element of the page.
pub(super) struct Elem<'a> {
    /// Its tag name and attributes.
    pub el: &'a Element,
    /// The enclosing element; `None` for the root (`<html>`).
    pub parent: Option<ElementId>,
}

/// The page as events and elements. Children of [`SKIPPED_ELEMENTS`] (scripts, styles,
/// templates, ...) are left out: they are never visible text.
pub(super) struct Dom<'a> {
    pub events: Vec<Event<'a>>,
    pub elements: Vec<Elem<'a>>,
}

impl<'a> Dom<'a> {
    pub(super) fn new(html: &'a Html) -> Dom<'a> {
        let mut dom = Dom {
            events: Vec::new(),
            elements: Vec::new(),
        };
        // Ids of the open elements, innermost last.
        let mut open: Vec<ElementId> = Vec::new();
        let root = html.tree.root();
        let mut current = root.first_child();
        while let Some(node) = current {
            let descend = match node.value() {
                Node::Text(t) => {
                    dom.events.push(Event::Text(t));
                    false
                }
                Node::Element(el) => {
                    let id = dom.elements.len() as ElementId;
                    dom.elements.push(Elem {
                        el,
                        parent: open.last().copied(),
                    });
                    dom.events.push(Event::Open(id));
                    open.push(id);
                    !SKIPPED_ELEMENTS.contains(&el.name())
                }
                Node::Document | Node::Fragment => true,
                _ => false,
            };
            if descend && let Some(child) = node.first_child() {
                current = Some(child);
                continue;
            }
            let mut n = node;
            current = loop {
                if n.value().is_element()
                    && let Some(id) = open.pop()
                {
                    dom.events.push(Event::Close(id));
                }
                if let Some(sibling) = n.next_sibling() {
                    break Some(sibling);
                }
                match n.parent() {
                    Some(parent) if parent.id() != root.id() => n = parent,
                    _ => break None,
                }
            };
        }
        while let Some(id) = open.pop() {
            dom.events.push(Event::Close(id));
        }
        dom
    }

    /// The tag name of element `id`.
    pub(super) fn name(&self, id: ElementId) -> &'a str {
        self.elements[id as usize].el.name()
    }
}
