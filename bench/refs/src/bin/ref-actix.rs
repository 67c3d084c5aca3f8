//! actix-web 4: `HttpServer` with N workers, one default service.

use actix_web::{web, App, HttpResponse, HttpServer};

async fn hello() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain")
        .body(rgi_bench_refs::hello_body())
}

fn main() -> std::io::Result<()> {
    let args = rgi_bench_refs::args();
    actix_web::rt::System::new().block_on(async move {
        let server = HttpServer::new(|| App::new().default_service(web::to(hello)))
            .workers(args.threads)
            .bind(args.bind)?;
        rgi_bench_refs::announce("ref-actix", &args);
        server.run().await
    })
}
