//! (in progress) `groundwork chain plan|start` and `groundwork clone`.
