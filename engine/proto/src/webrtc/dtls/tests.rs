use super::*;

const SERVER: &str = "127.0.0.1:5000";
const CLIENT: &str = "127.0.0.1:6000";

fn pair() -> (DtlsTransport, DtlsTransport) {
    let (sc, cc) = (DtlsCertificate::generate().unwrap(), DtlsCertificate::generate().unwrap());
    let opts = DtlsOptions::default();
    let fp = |c: &DtlsCertificate| -> [u8; 32] { Sha256::digest(c.der()).into() };
    let server = DtlsTransport::new(DtlsRole::Server, &sc, fp(&cc), &opts).unwrap();
    let client = DtlsTransport::new(DtlsRole::Client, &cc, fp(&sc), &opts).unwrap();
    (server, client)
}

fn to_server(now: Instant, client: &mut DtlsTransport, server: &mut DtlsTransport) {
    while let Some(d) = client.poll_transmit() {
        server.handle_datagram(now, CLIENT.parse().unwrap(), &d).unwrap();
    }
}

fn to_client(now: Instant, server: &mut DtlsTransport, client: &mut DtlsTransport) -> usize {
    let mut n = 0;
    while let Some(d) = server.poll_transmit() {
        client.handle_datagram(now, SERVER.parse().unwrap(), &d).unwrap();
        n += 1;
    }
    n
}

/// The server's flight 4 is lost, and the client's repeated ClientHello
/// reaches the server just before the server's own retransmission timer
/// would fire (both timers run 1 s; the client's started a one-way delay
/// earlier). rtc-dtls 0.21 then drops its timer (a duplicate flight clears
/// it) and sends nothing again: the handshake stalled until the connect
/// timeout. The transport keeps a timer of its own for that case.
#[test]
fn handshake_completes_when_a_repeated_flight_cancels_the_librarys_timer() {
    let (mut server, mut client) = pair();
    let t0 = Instant::now();
    client.connect(t0, SERVER.parse().unwrap()).unwrap();
    to_server(t0, &mut client, &mut server); // ClientHello
    assert_eq!(to_client(t0, &mut server, &mut client), 1); // HelloVerifyRequest
    to_server(t0, &mut client, &mut server); // ClientHello with the cookie
    let lost = std::iter::from_fn(|| server.poll_transmit()).count(); // flight 4, lost
    assert!(lost >= 1);
    let mut now = t0;
    for _ in 0..100 {
        now += Duration::from_millis(100);
        // The client's timer first, its flight delivered before the server's timer.
        if client.poll_timeout().is_some_and(|t| now >= t) {
            client.handle_timeout(now).unwrap();
        }
        to_server(now, &mut client, &mut server);
        if server.poll_timeout().is_some_and(|t| now >= t) {
            server.handle_timeout(now).unwrap();
        }
        to_client(now, &mut server, &mut client);
        to_server(now, &mut client, &mut server);
        to_client(now, &mut server, &mut client);
        if server.state() == DtlsState::Connected && client.state() == DtlsState::Connected {
            break;
        }
    }
    assert_eq!((server.state(), client.state()), (DtlsState::Connected, DtlsState::Connected));
    assert!(now < t0 + Duration::from_secs(5), "took {:?}", now - t0);
}
