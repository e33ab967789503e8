//! `berth-app`: Berth's desktop app. Everything lives in the library ([`berth_app::run`]).

fn main() {
    berth_app::run();
}
