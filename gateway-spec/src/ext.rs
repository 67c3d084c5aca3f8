//! [`ApplicationExt`]: layering and boxing any application with a method call.

use tower_layer::Layer;

use crate::tower::TowerLayer;
use crate::{Application, BoxApp};

/// Methods for every [`Application`]: wrap it in a layer, erase its type.
///
/// ```
/// use rgi::{ApplicationExt, lint::LintLayer};
/// let app = rgi::app_fn(|_, start| async move { start.text("hi") })
///     .layer(LintLayer::new())
///     .boxed();
/// assert_eq!(rgi::testing::TestClient::new(app).get("/").send_blocking().text(), "hi");
/// ```
pub trait ApplicationExt: Application + Sized {
    /// Wrap this application in `layer` (`layer.layer(self)`). The last layer applied is the outermost.
    fn layer<L>(self, layer: L) -> L::Service
    where
        L: Layer<Self>,
        L::Service: Application,
    {
        layer.layer(self)
    }

    /// Wrap this application in a `tower` layer (tower-http's CORS, timeout, set-header …); see
    /// [`TowerLayer`].
    fn tower_layer<L>(self, layer: L) -> <TowerLayer<L> as Layer<Self>>::Service
    where
        TowerLayer<L>: Layer<Self>,
    {
        TowerLayer::new(layer).layer(self)
    }

    /// Erase the type: a cheaply clonable [`BoxApp`].
    fn boxed(self) -> BoxApp {
        BoxApp::new(self)
    }
}

impl<A: Application> ApplicationExt for A {}
