//! The drawing tools' state machine: the shape a press starts, what a drag makes of it, and what the
//! release does with it. The bidirectional and angle tools take two drags, the first stroke waiting for
//! the second. Pure, so it is tested natively; the viewport (tools.rs) feeds it the pointer.

use measure::shape::{Shape, perpendicular_axis};
use measure::{Point, Spacing};

use super::tools::Tool;

/// The draft a press at `at` starts; None for the tools that draw nothing. `first`: the first stroke
/// of a two-stroke tool, waiting for the second.
pub fn pressed(tool: Tool, at: Point, first: Option<[Point; 2]>) -> Option<Shape> {
    match tool {
        Tool::Length => Some(Shape::Length { a: at, b: at }),
        Tool::Arrow => Some(Shape::Arrow { from: at, to: at }),
        Tool::Ellipse => Some(Shape::Ellipse { center: at, radius_x: 0.0, radius_y: 0.0 }),
        Tool::Bidirectional => Some(Shape::Bidirectional { long: first.unwrap_or([at, at]), short: [at, at] }),
        Tool::Angle => {
            let [a, vertex] = first.unwrap_or([at, at]);
            Some(Shape::Angle { a, vertex, b: vertex })
        }
        Tool::Window | Tool::Pan | Tool::Nodule => None,
    }
}

/// The draft while dragging from `from` to `to`. The short axis stays perpendicular to the long one in
/// millimetres, hence `spacing`.
pub fn dragged(
    tool: Tool,
    from: Point,
    to: Point,
    first: Option<[Point; 2]>,
    spacing: Option<&Spacing>,
) -> Option<Shape> {
    match tool {
        Tool::Length => Some(Shape::Length { a: from, b: to }),
        Tool::Arrow => Some(Shape::Arrow { from, to }),
        Tool::Ellipse => Some(Shape::Ellipse {
            center: Point::new((from.x + to.x) / 2.0, (from.y + to.y) / 2.0),
            radius_x: (to.x - from.x).abs() / 2.0,
            radius_y: (to.y - from.y).abs() / 2.0,
        }),
        Tool::Bidirectional => Some(match first {
            None => Shape::Bidirectional { long: [from, to], short: [from, from] },
            Some(long) => Shape::Bidirectional { long, short: perpendicular_axis(long, from, to, spacing) },
        }),
        // The first drag draws an arm ending at the vertex; the second the other arm from the vertex.
        Tool::Angle => Some(match first {
            None => Shape::Angle { a: from, vertex: to, b: to },
            Some([a, vertex]) => Shape::Angle { a, vertex, b: to },
        }),
        Tool::Window | Tool::Pan | Tool::Nodule => None,
    }
}

/// What a release does with the draft.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Release {
    /// Nothing was being drawn.
    Nothing,
    /// The first stroke of a two-stroke tool: it waits for the second.
    Wait([Point; 2]),
    /// A click without a drag where a first stroke was due: nothing to keep.
    Discard,
    /// The shape is done: save it.
    Finished(Shape),
}

/// `first`: the first stroke, if one is waiting.
pub fn released(tool: Tool, draft: Option<Shape>, first: Option<[Point; 2]>) -> Release {
    let Some(shape) = draft else { return Release::Nothing };
    if !tool.two_strokes() || first.is_some() {
        return Release::Finished(shape);
    }
    let stroke = match shape {
        Shape::Bidirectional { long, .. } => long,
        Shape::Angle { a, vertex, .. } => [a, vertex],
        _ => return Release::Nothing,
    };
    if stroke[0] != stroke[1] { Release::Wait(stroke) } else { Release::Discard }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(x: f64, y: f64) -> Point {
        Point::new(x, y)
    }

    /// Press at `from`, drag to `to`, release: the draft and what the release does with it.
    fn stroke(tool: Tool, from: Point, to: Point, first: Option<[Point; 2]>) -> Release {
        let mut draft = pressed(tool, from, first);
        if from != to {
            draft = dragged(tool, from, to, first, None);
        }
        released(tool, draft, first)
    }

    #[test]
    fn one_drag_draws_a_length_or_an_ellipse_across_the_drag() {
        assert_eq!(
            stroke(Tool::Length, p(20.0, 20.0), p(120.0, 20.0), None),
            Release::Finished(Shape::Length { a: p(20.0, 20.0), b: p(120.0, 20.0) })
        );
        assert_eq!(
            stroke(Tool::Ellipse, p(165.0, 156.0), p(175.0, 164.0), None),
            Release::Finished(Shape::Ellipse { center: p(170.0, 160.0), radius_x: 5.0, radius_y: 4.0 })
        );
        assert_eq!(stroke(Tool::Window, p(1.0, 1.0), p(9.0, 9.0), None), Release::Nothing);
    }

    #[test]
    fn an_angle_is_two_drags_meeting_at_the_vertex() {
        let (a, vertex, b) = (p(40.0, 60.0), p(80.0, 60.0), p(80.0, 100.0));
        let Release::Wait(first) = stroke(Tool::Angle, a, vertex, None) else { panic!("the first arm waits") };
        assert_eq!(first, [a, vertex]);
        assert_eq!(pressed(Tool::Angle, vertex, Some(first)), Some(Shape::Angle { a, vertex, b: vertex }));
        assert_eq!(stroke(Tool::Angle, vertex, b, Some(first)), Release::Finished(Shape::Angle { a, vertex, b }));
    }

    #[test]
    fn the_short_axis_is_drawn_perpendicular_to_the_waiting_long_axis() {
        let long = [p(10.0, 10.0), p(26.0, 10.0)];
        assert_eq!(stroke(Tool::Bidirectional, long[0], long[1], None), Release::Wait(long));
        // Dragged at a slant: only the part across the long axis counts.
        let Release::Finished(Shape::Bidirectional { long: kept, short }) =
            stroke(Tool::Bidirectional, p(18.0, 6.0), p(21.0, 20.0), Some(long))
        else {
            panic!("the second drag finishes it")
        };
        assert_eq!(kept, long);
        assert_eq!(short, [p(18.0, 6.0), p(18.0, 20.0)]);
    }

    #[test]
    fn a_click_where_a_first_stroke_was_due_draws_nothing() {
        assert_eq!(stroke(Tool::Bidirectional, p(5.0, 5.0), p(5.0, 5.0), None), Release::Discard);
        assert_eq!(stroke(Tool::Angle, p(5.0, 5.0), p(5.0, 5.0), None), Release::Discard);
    }
}
